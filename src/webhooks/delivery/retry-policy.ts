/** Delivery rules as pure functions (docs/delivery-semantics.md); the worker only applies them. */

/** An endpoint whose last this-many deliveries all failed is disabled. */
export const AUTO_DISABLE_AFTER_CONSECUTIVE_FAILURES = 15;
/** A receiver's Retry-After is honoured up to this long, so one header cannot park a delivery for days. */
export const MAX_RETRY_AFTER_MS = 3_600_000;
/** How much of a receiver's response body is kept with an attempt. */
export const RESPONSE_BODY_LIMIT_BYTES = 2048;
/** ±10 %: spreads the retries of a burst that failed together. */
export const RETRY_JITTER_RATIO = 0.1;

const HTTP_GONE = 410;
/** Statuses whose Retry-After we honour: rate limiting and planned unavailability. */
const RETRY_AFTER_STATUSES: ReadonlySet<number> = new Set([429, 503]);

export type ResponseClass = 'success' | 'gone' | 'retry';

/** 2xx succeeds; 410 means the receiver wants no more (disable the endpoint); anything else, 3xx included, is retried. */
export function classifyResponse(status: number): ResponseClass {
  if (status >= 200 && status < 300) return 'success';
  if (status === HTTP_GONE) return 'gone';
  return 'retry';
}

/**
 * Delay before the next attempt after `attemptsMade` attempts (1-based; the first attempt
 * is immediate), or undefined once the schedule is exhausted (1 + scheduleMs.length attempts).
 */
export function nextRetryDelayMs(
  attemptsMade: number,
  scheduleMs: readonly number[],
  random: () => number = Math.random,
): number | undefined {
  const base = attemptsMade >= 1 ? scheduleMs[attemptsMade - 1] : undefined;
  if (base === undefined) return undefined;
  const jitter = (random() * 2 - 1) * RETRY_JITTER_RATIO;
  return Math.max(0, Math.round(base * (1 + jitter)));
}

/**
 * When the last attempt of a pending delivery is planned: its next attempt at `nextAttemptAt`,
 * then, should each fail, every delay of the schedule still ahead of it. The planned time
 * without jitter (±RETRY_JITTER_RATIO of each remaining delay) and without a receiver's
 * Retry-After, either of which can move it. `attemptsMade` counts the attempts already made.
 */
export function plannedLastAttemptAt(nextAttemptAt: Date, attemptsMade: number, scheduleMs: readonly number[]): Date {
  // Attempt k (1-based) that fails waits scheduleMs[k - 1]; the next attempt is number attemptsMade + 1.
  const remainingMs = scheduleMs.slice(Math.max(0, attemptsMade)).reduce((sum, delay) => sum + delay, 0);
  return new Date(nextAttemptAt.getTime() + remainingMs);
}

/** Retry-After as delay-seconds or an HTTP-date → ms from `now`, capped; undefined when absent or invalid. */
export function parseRetryAfter(header: string | undefined, now: Date): number | undefined {
  const text = header?.trim();
  if (!text) return undefined;
  if (/^\d+$/.test(text)) return Math.min(Number(text) * 1000, MAX_RETRY_AFTER_MS);
  // Every HTTP-date form names its month; this keeps Date.parse's leniency ("1.5", "2026") out.
  if (!/[a-z]/i.test(text)) return undefined;
  const at = Date.parse(text);
  if (Number.isNaN(at)) return undefined;
  return Math.min(Math.max(0, at - now.getTime()), MAX_RETRY_AFTER_MS);
}

/**
 * Delay before the next attempt after a failed one: the schedule's delay, stretched to the
 * receiver's Retry-After on 429/503. Undefined when no attempt is left.
 */
export function retryDelayAfterFailure(params: {
  attemptsMade: number;
  scheduleMs: readonly number[];
  statusCode?: number;
  retryAfterMs?: number;
  random?: () => number;
}): number | undefined {
  const scheduled = nextRetryDelayMs(params.attemptsMade, params.scheduleMs, params.random);
  if (scheduled === undefined) return undefined;
  const honoured =
    params.statusCode !== undefined && RETRY_AFTER_STATUSES.has(params.statusCode) && params.retryAfterMs !== undefined
      ? Math.min(params.retryAfterMs, MAX_RETRY_AFTER_MS)
      : 0;
  return Math.max(scheduled, honoured);
}

export function shouldAutoDisable(consecutiveFailures: number): boolean {
  return consecutiveFailures >= AUTO_DISABLE_AFTER_CONSECUTIVE_FAILURES;
}
