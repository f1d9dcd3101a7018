import type { SqlRunner } from '../../db/sql-runner.ts';

const PRUNE_DELIVERIES = `WITH doomed AS (
     SELECT id FROM webhook_deliveries
     WHERE created_at < $1::timestamptz AND status <> 'pending'
     ORDER BY created_at
     LIMIT $2
     FOR UPDATE SKIP LOCKED
   ),
   deleted AS (
     DELETE FROM webhook_deliveries d USING doomed WHERE d.id = doomed.id RETURNING 1
   )
   SELECT count(*)::int AS n FROM deleted`;

/** Deletes finished deliveries (and their attempts) created before `olderThan`, at most `batchSize`. Returns how many. */
export async function pruneDeliveries(sql: SqlRunner, olderThan: Date, batchSize: number): Promise<number> {
  const rows = await sql.query<{ n: number }>(PRUNE_DELIVERIES, [olderThan.toISOString(), batchSize]);
  return rows[0]?.n ?? 0;
}

const FORGET_EXPIRED_PREVIOUS_SECRETS = `WITH forgotten AS (
     UPDATE webhook_endpoints
        SET previous_secret_encrypted = NULL, previous_secret_expires_at = NULL, updated_at = now()
      WHERE previous_secret_expires_at < $1::timestamptz
      RETURNING 1
   )
   SELECT count(*)::int AS n FROM forgotten`;

/**
 * Forgets previous secrets that stopped signing before `expiredBefore`: after that they can
 * no longer be extended (secret-overlap.ts), so their ciphertexts are not kept. Returns how many.
 */
export async function forgetExpiredPreviousSecrets(sql: SqlRunner, expiredBefore: Date): Promise<number> {
  const rows = await sql.query<{ n: number }>(FORGET_EXPIRED_PREVIOUS_SECRETS, [expiredBefore.toISOString()]);
  return rows[0]?.n ?? 0;
}

const PRUNE_DELIVERIES_OVER_CAP = `WITH over_cap AS (
     SELECT endpoint_id FROM webhook_deliveries GROUP BY endpoint_id HAVING count(*) > $1
   ),
   excess AS (
     SELECT x.id
     FROM over_cap o
     CROSS JOIN LATERAL (
       SELECT d.id, d.status FROM webhook_deliveries d
       WHERE d.endpoint_id = o.endpoint_id
       ORDER BY d.created_at DESC, d.id DESC
       OFFSET $1
     ) x
     WHERE x.status <> 'pending'
     LIMIT $2
   ),
   doomed AS (
     SELECT id FROM webhook_deliveries
     WHERE id = ANY(ARRAY(SELECT id FROM excess)) AND status <> 'pending'
     FOR UPDATE SKIP LOCKED
   ),
   deleted AS (
     DELETE FROM webhook_deliveries d USING doomed WHERE d.id = doomed.id RETURNING 1
   )
   SELECT count(*)::int AS n FROM deleted`;

/**
 * Deletes finished deliveries (and their attempts) of endpoints holding more than `maxPerEndpoint`
 * rows: those ranked past the cap, newest first, at most `batchSize`. Pending rows are never
 * deleted (they still count towards the cap). Returns how many.
 */
export async function pruneDeliveriesOverCap(sql: SqlRunner, maxPerEndpoint: number, batchSize: number): Promise<number> {
  const rows = await sql.query<{ n: number }>(PRUNE_DELIVERIES_OVER_CAP, [maxPerEndpoint, batchSize]);
  return rows[0]?.n ?? 0;
}
