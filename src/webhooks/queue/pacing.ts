/**
 * Pacing: an endpoint's `max_per_second`, kept by the claim statement (claim.ts) across every
 * worker process, with the rows that wait for their turn left in the queue, unclaimed.
 *
 * The rule is GCRA (the generic cell rate algorithm, a token bucket kept as one timestamp per
 * endpoint). `paced_until` is when every attempt allowed so far would have started had they gone
 * out exactly one interval (1 s / max_per_second) apart. A claim may take a paced endpoint's row
 * while that time is less than a burst (PACING_BURST_MS of its rate, at least one attempt) ahead
 * of now, and moves it one interval on for each row it takes. So in any window of W seconds an
 * endpoint's rows are claimed at most max_per_second × W + burst times, whoever claims them.
 *
 * Concurrency: the claim locks the pacing rows of the endpoints it is about to take rows of (in
 * id order, so two claims never deadlock), which under READ COMMITTED also hands it their latest
 * committed state; a second claim waits for the first to commit and is allowed only what is left.
 * Rows are charged only once they are claimed, so a row another worker took meanwhile costs nothing.
 *
 * These are SQL fragments over an alias of `webhook_endpoints` (or of a row with its
 * `max_per_second` and `paced_until`), so the rule is written once for every statement that uses it.
 */

/** A paced endpoint may start this much of a second's attempts at once. */
export const PACING_BURST_MS = 100;
/** `max_per_second` as the API allows it (endpoints/schemas.ts). */
export const MAX_PER_SECOND_LIMIT = 1_000;

/** The rate, clamped: a value written behind the API's back must not fail every claim with a division by zero. */
const rate = (e: string) => `least(greatest(${e}.max_per_second, 1), ${MAX_PER_SECOND_LIMIT})`;
const interval = (e: string) => `(interval '1 second' / ${rate(e)})`;
const burst = (e: string) => `greatest(1, ceil(${rate(e)} * ${PACING_BURST_MS} / 1000.0))::int`;

/** When the next attempt of paced endpoint `e` may start; null when it never started one. */
export const nextSendAt = (e: string) => `(${e}.paced_until - (${burst(e)} - 1) * ${interval(e)})`;

/**
 * Whether endpoint `e` is paced and may start no attempt now. An endpoint no longer paced keeps its
 * last `paced_until`, which must not hold it back.
 */
export const pacedOut = (e: string) => `(${e}.max_per_second IS NOT NULL AND coalesce(${nextSendAt(e)} > now(), false))`;

/** How many attempts of paced endpoint `e` may start now (none when a claim with a later clock took them all). */
export const sendsAllowedNow = (e: string) =>
  `greatest(0, ${burst(e)} - coalesce(ceil(greatest(0, extract(epoch FROM (${e}.paced_until - now()))) * ${rate(e)}), 0))::int`;

/** `e.paced_until` once `claimed` more attempts have been allowed from now. */
export const pacedUntilAfter = (e: string, claimed: string) => `greatest(${e}.paced_until, now()) + ${claimed} * ${interval(e)}`;
