import type { SqlRunner } from '../../db/sql-runner.ts';

/** What a redeliver found: `found` is false when there is no such row. */
export interface MadeDue {
  found: boolean;
  scheduled: boolean;
  attemptLimitReached: boolean;
}

const RELEASE_CLAIMS = `WITH released AS (
     UPDATE webhook_deliveries SET claim_token = NULL, next_retry_at = now(), updated_at = now()
     WHERE claim_token = ANY($1::uuid[]) AND status = 'pending'
     RETURNING 1
   )
   SELECT count(*)::int AS n FROM released`;

/** Gives claimed, unfinished rows back (shutdown): due now, for any worker. */
export async function releaseClaims(sql: SqlRunner, tokens: readonly string[]): Promise<number> {
  if (tokens.length === 0) return 0;
  const rows = await sql.query<{ n: number }>(RELEASE_CLAIMS, [tokens]);
  return rows[0]?.n ?? 0;
}

const RELEASE_DELIVERIES = `WITH released AS (
     UPDATE webhook_deliveries d SET claim_token = NULL, next_retry_at = now(), updated_at = now()
     FROM unnest($1::uuid[], $2::uuid[]) AS r(id, claim_token)
     WHERE d.id = r.id AND d.claim_token = r.claim_token AND d.status = 'pending'
     RETURNING 1
   )
   SELECT count(*)::int AS n FROM released`;

/** Gives back particular claimed rows (id and the token that claims it), due now. */
export async function releaseDeliveries(sql: SqlRunner, claims: ReadonlyArray<{ id: string; claimToken: string }>): Promise<number> {
  if (claims.length === 0) return 0;
  const rows = await sql.query<{ n: number }>(RELEASE_DELIVERIES, [claims.map((c) => c.id), claims.map((c) => c.claimToken)]);
  return rows[0]?.n ?? 0;
}

const MAKE_DUE = `WITH target AS (
     SELECT id, attempts >= $3::int AS attempt_limit_reached
     FROM webhook_deliveries WHERE id = $1::uuid AND endpoint_id = $2::uuid
   ),
   changed AS (
     UPDATE webhook_deliveries d
     SET status = 'pending', next_retry_at = now(), claim_token = NULL, updated_at = now()
     WHERE d.id = $1::uuid AND d.endpoint_id = $2::uuid AND d.attempts < $3::int
       AND NOT (d.status = 'pending' AND d.claim_token IS NOT NULL AND d.next_retry_at > now())
     RETURNING d.id
   )
   SELECT EXISTS (SELECT 1 FROM changed) AS scheduled, t.attempt_limit_reached FROM target t`;

/**
 * Makes a delivery due now again (redeliver), unless an attempt of it is in flight or it has
 * had `maxAttempts` attempts already. `found` is false when there is no such row.
 *
 * Every condition is on the updated row `d`, not on a CTE's snapshot: when a claim commits
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
