import type { SqlRunner } from '../../db/sql-runner.ts';

/** What a redeliver found: `found` is false when there is no such row. */
export interface MadeDue {
  found: boolean;
  scheduled: boolean;
  attemptLimitReached: boolean;
}

const RELEASE_CLAIMS = `WITH released AS (
     UPDATE webhook_queue SET claim_token = NULL, lease_until = NULL, due_at = least(due_at, now())
     WHERE claim_token = ANY($1::uuid[])
     RETURNING 1
   )
   SELECT count(*)::int AS n FROM released`;

/**
 * Gives claimed, unfinished rows back (shutdown): due now, for any worker. A row a claim took was
 * due already; one written claimed was due only at its lease's end (insert.ts), and is made due now.
 */
export async function releaseClaims(sql: SqlRunner, tokens: readonly string[]): Promise<number> {
  if (tokens.length === 0) return 0;
  const rows = await sql.query<{ n: number }>(RELEASE_CLAIMS, [tokens]);
  return rows[0]?.n ?? 0;
}

const RELEASE_DELIVERIES = `WITH released AS (
     UPDATE webhook_queue q SET claim_token = NULL, lease_until = NULL, due_at = least(q.due_at, now())
     FROM unnest($1::uuid[], $2::uuid[], $3::uuid[]) AS r(endpoint_id, id, claim_token)
     WHERE q.endpoint_id = r.endpoint_id AND q.delivery_id = r.id AND q.claim_token = r.claim_token
     RETURNING 1
   )
   SELECT count(*)::int AS n FROM released`;

/** Gives back particular claimed rows (id, endpoint and the token that claims it), due now. */
export async function releaseDeliveries(
  sql: SqlRunner,
  claims: ReadonlyArray<{ id: string; endpointId: string; claimToken: string }>,
): Promise<number> {
  if (claims.length === 0) return 0;
  const rows = await sql.query<{ n: number }>(RELEASE_DELIVERIES, [
    claims.map((c) => c.endpointId),
    claims.map((c) => c.id),
    claims.map((c) => c.claimToken),
  ]);
  return rows[0]?.n ?? 0;
}

/**
 * CTEs that put finished deliveries back in the queue, for a statement with a CTE `reopened`
 * (log rows it deleted, `RETURNING l.*`): each gets a queue row due at `dueAt` (an expression
 * over `reopened`'s columns) with its id and attempt count, and its final attempt, no longer the
 * final one, joins the earlier attempts. The CTE `back` returns one row per delivery requeued.
 */
export function requeueReopened(dueAt: string): string {
  return `final_attempt AS (
     INSERT INTO webhook_earlier_attempts (delivery_id, attempt_number, started_at, duration_ms, response_code, response_body, error,
                                           signature_timestamp, body_bytes, body_sha256, signed_with, response_date)
     SELECT id, attempts, attempt_started_at, attempt_duration_ms, response_code, response_body, error,
            signature_timestamp, body_bytes, encode(body_sha256, 'hex'), coalesce(string_to_array(signed_with, ' '), ARRAY[]::text[]),
            response_date
     FROM reopened WHERE attempt_started_at IS NOT NULL
   ),
   back AS (
     INSERT INTO webhook_queue (endpoint_id, delivery_id, event_id, event_type, attempts, due_at, coalesced_payload, created_at)
     SELECT endpoint_id, id, event_id, event_type, attempts, ${dueAt}, body::jsonb, created_at FROM reopened
     RETURNING 1
   )`;
}

const MAKE_DUE = `WITH target AS (
     SELECT attempts >= $3::int AS attempt_limit_reached FROM webhook_queue WHERE endpoint_id = $2::uuid AND delivery_id = $1::uuid
     UNION ALL
     SELECT attempts >= $3::int FROM webhook_delivery_log WHERE endpoint_id = $2::uuid AND id = $1::uuid
   ),
   requeued AS (
     UPDATE webhook_queue q SET due_at = now(), claim_token = NULL, lease_until = NULL
     WHERE q.endpoint_id = $2::uuid AND q.delivery_id = $1::uuid AND q.attempts < $3::int
       AND NOT (q.claim_token IS NOT NULL AND q.lease_until > now())
     RETURNING 1
   ),
   reopened AS (
     DELETE FROM webhook_delivery_log l
     WHERE l.endpoint_id = $2::uuid AND l.id = $1::uuid AND l.attempts < $3::int
     RETURNING l.*
   ),
   ${requeueReopened('now()')}
   SELECT EXISTS (SELECT 1 FROM requeued UNION ALL SELECT 1 FROM back) AS scheduled, t.attempt_limit_reached FROM target t`;

/**
 * Makes a delivery due now again (redeliver), unless an attempt of it is in flight or it has
 * had `maxAttempts` attempts already. `found` is false when there is no such delivery. A
 * finished delivery moves back from the log to the queue, with the same id and attempt count.
 *
 * Every condition is on the updated or deleted row, not on a CTE's snapshot: when a claim commits
 * while this statement waits for the row lock, READ COMMITTED re-checks them on the claimed
 * version, so the claim is left alone instead of being voided under a worker that is sending
 * it. The cap is checked the same way, so concurrent redeliveries cannot pass it either.
 */
export async function makeDue(sql: SqlRunner, endpointId: string, deliveryId: string, maxAttempts: number): Promise<MadeDue> {
  const rows = await sql.query<{ scheduled: boolean; attempt_limit_reached: boolean }>(MAKE_DUE, [deliveryId, endpointId, maxAttempts]);
  const row = rows[0];
  return {
    found: row !== undefined,
    scheduled: row?.scheduled ?? false,
    attemptLimitReached: row !== undefined && !row.scheduled && row.attempt_limit_reached,
  };
}
