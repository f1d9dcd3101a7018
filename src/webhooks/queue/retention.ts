import type { SqlRunner } from '../../db/sql-runner.ts';

// Only the DEFAULT partitions are searched row by row: day partitions go whole (partitions.ts).
const PRUNE_DELIVERIES = `WITH doomed AS (
     SELECT endpoint_id, id FROM webhook_delivery_log_default
     WHERE coalesce(created_at, webhook_uuid7_time(id)) < $1::timestamptz
     LIMIT $2
   ),
   deleted AS (
     DELETE FROM webhook_delivery_log_default l USING doomed
     WHERE l.endpoint_id = doomed.endpoint_id AND l.id = doomed.id
     RETURNING l.id
   ),
   attempts AS (
     DELETE FROM webhook_earlier_attempts a WHERE a.delivery_id IN (SELECT id FROM deleted)
   ),
   events AS (
     DELETE FROM webhook_events_default e
     WHERE e.id IN (SELECT id FROM webhook_events_default WHERE created_at < $1::timestamptz ORDER BY created_at LIMIT $2)
       AND NOT EXISTS (SELECT 1 FROM webhook_queue q WHERE q.event_id = e.id)
   )
   SELECT count(*)::int AS n FROM deleted`;

/**
 * Deletes finished deliveries (and their attempts) created before `olderThan` that lie outside
 * the day partitions, at most `batchSize`, with event bodies of that age no queued delivery
 * still needs. Returns how many deliveries.
 */
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

const PRUNE_DELIVERIES_OVER_CAP = `WITH counts AS (
     SELECT endpoint_id, sum(n) AS n FROM (
       SELECT endpoint_id, count(*) AS n FROM webhook_delivery_log GROUP BY endpoint_id
       UNION ALL SELECT endpoint_id, count(*) FROM webhook_queue GROUP BY endpoint_id
     ) c GROUP BY endpoint_id
   ),
   excess AS (
     SELECT x.endpoint_id, x.id
     FROM counts o
     CROSS JOIN LATERAL (
       SELECT d.endpoint_id, d.id, d.finished FROM (
         SELECT l.endpoint_id, l.id, true AS finished FROM webhook_delivery_log l WHERE l.endpoint_id = o.endpoint_id
         UNION ALL SELECT q.endpoint_id, q.delivery_id, false FROM webhook_queue q WHERE q.endpoint_id = o.endpoint_id
       ) d
       ORDER BY d.id DESC
       OFFSET $1
     ) x
     WHERE o.n > $1 AND x.finished
     LIMIT $2
   ),
   deleted AS (
     DELETE FROM webhook_delivery_log l USING excess x WHERE l.endpoint_id = x.endpoint_id AND l.id = x.id RETURNING l.id
   ),
   attempts AS (
     DELETE FROM webhook_earlier_attempts a WHERE a.delivery_id IN (SELECT id FROM deleted)
   )
   SELECT count(*)::int AS n FROM deleted`;

/**
 * Deletes finished deliveries (and their attempts) of endpoints holding more than `maxPerEndpoint`
 * deliveries: those ranked past the cap, newest (by UUIDv7 id) first, at most `batchSize`. Pending rows are never
 * deleted (they still count towards the cap). Returns how many.
 */
export async function pruneDeliveriesOverCap(sql: SqlRunner, maxPerEndpoint: number, batchSize: number): Promise<number> {
  const rows = await sql.query<{ n: number }>(PRUNE_DELIVERIES_OVER_CAP, [maxPerEndpoint, batchSize]);
  return rows[0]?.n ?? 0;
}
