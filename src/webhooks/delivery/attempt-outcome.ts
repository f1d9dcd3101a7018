import { classifyResponse, retryDelayAfterFailure } from './retry-policy.ts';
import type { AttemptResult } from './sender.ts';

/**
 * What one attempt means for its delivery (pure; the worker applies it):
 * - `success`: any 2xx;
 * - `gone`: 410, the endpoint is disabled at once and the delivery fails;
 * - `retry`: failed with attempts left, due again after `delayMs`;
 * - `failed`: failed and the schedule is exhausted.
 */
export type AttemptOutcome = { outcome: 'success' } | { outcome: 'gone' } | { outcome: 'retry'; delayMs: number } | { outcome: 'failed' };

export const GONE_DISABLED_REASON = 'endpoint returned 410 Gone';

export function decideAttemptOutcome(params: {
  result: Pick<AttemptResult, 'ok' | 'statusCode' | 'retryAfterMs'>;
  /** Attempts made including this one. */
  attemptsMade: number;
  scheduleMs: readonly number[];
  random?: () => number;
}): AttemptOutcome {
  const { result } = params;
  if (result.ok) return { outcome: 'success' };
  if (result.statusCode !== undefined && classifyResponse(result.statusCode) === 'gone') return { outcome: 'gone' };
  const delayMs = retryDelayAfterFailure({
    attemptsMade: params.attemptsMade,
    scheduleMs: params.scheduleMs,
    statusCode: result.statusCode,
    retryAfterMs: result.retryAfterMs,
    random: params.random,
  });
  return delayMs === undefined ? { outcome: 'failed' } : { outcome: 'retry', delayMs };
}

/** The error text kept on the attempt and the delivery: the sender's error, else the HTTP status. */
export function describeFailure(result: Pick<AttemptResult, 'ok' | 'statusCode' | 'error'>): string | null {
  if (result.ok) return null;
  if (result.error) return result.error;
  return result.statusCode !== undefined ? `HTTP ${result.statusCode}` : 'unknown failure';
}
