/** One finished attempt → the result row to write, and the one to write instead should the database refuse it. Pure. */
import type { ClaimedDelivery, SignedParts } from '../queue/types.ts';
import { decideAttemptOutcome, describeFailure, type AttemptOutcome } from './attempt-outcome.ts';
import { storableAttempt, unrecordableAttempt } from './receiver-values.ts';
import type { PendingResult } from './result-writer.ts';
import { RESPONSE_BODY_LIMIT_BYTES } from './retry-policy.ts';
import type { AttemptResult } from './sender.ts';

export function attemptRecordFor(
  delivery: ClaimedDelivery,
  sent: { result: AttemptResult; signed: SignedParts | null },
  policy: { scheduleMs: readonly number[]; random?: () => number },
): { decision: AttemptOutcome; pending: PendingResult } {
  const { result, signed } = sent;
  const attemptsMade = delivery.attempts + 1;
  const decision = decideAttemptOutcome({ result, attemptsMade, ...policy });
  const record = storableAttempt(
    {
      deliveryId: delivery.id,
      endpointId: delivery.endpointId,
      coalescedBody: delivery.coalesced ? delivery.body : null,
      claimToken: delivery.claimToken,
      startedAt: result.startedAt,
      durationMs: result.durationMs,
      responseCode: result.statusCode ?? null,
      responseBody: result.responseBody ?? null,
      error: describeFailure(result),
      outcome: decision.outcome,
      delayMs: decision.outcome === 'retry' ? decision.delayMs : null,
      signed,
      responseDate: result.responseDate ?? null,
    },
    RESPONSE_BODY_LIMIT_BYTES,
  );
  // Decided now, while the attempt count is at hand: the failure it counts as, should the database refuse it.
  const failure = decideAttemptOutcome({ result: { ok: false }, attemptsMade, ...policy });
  const unrecordable = unrecordableAttempt(record, {
    outcome: failure.outcome,
    delayMs: failure.outcome === 'retry' ? failure.delayMs : null,
  });
  return { decision, pending: { record, unrecordable } };
}
