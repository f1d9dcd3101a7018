/**
 * Delivery rows written straight into the queue table with one `INSERT … SELECT
 * generate_series` (PostgreSQL): the fast way to build a backlog of a million rows. Rows are
 * spread round-robin over `endpointIds`, with the envelope a `card.viewed` dispatch writes.
 */
import type pg from 'pg';
import { DUE_CHANNEL } from '../../src/webhooks/queue/channels.ts';

export async function insertDeliveries(
  pool: pg.Pool,
  params: { endpointIds: readonly string[]; ownerId: string; count: number; dueInMs: number },
): Promise<void> {
  await pool.query(
    `INSERT INTO webhook_deliveries (id, endpoint_id, event_id, event_type, payload, status, next_retry_at, created_at, updated_at)
     SELECT gen_random_uuid(), ($1::uuid[])[1 + g % cardinality($1::uuid[])], gen_random_uuid(), 'card.viewed',
            jsonb_build_object('id', gen_random_uuid(), 'type', 'card.viewed', 'timestamp', now(),
              'data', jsonb_build_object('userId', $2::uuid, 'cardId', NULL, 'viewer', NULL, 'source', 'link')),
            'pending', now() + ($4::int + g % 1000) * interval '1 millisecond', now(), now()
     FROM generate_series(1, $3::int) AS g`,
    [params.endpointIds, params.ownerId, params.count, params.dueInMs],
  );
  // As a dispatching API process does, so a worker process claims at once.
  await pool.query(`SELECT pg_notify('${DUE_CHANNEL}', '')`);
}

export async function endpointIdsOf(pool: pg.Pool, ownerId: string): Promise<string[]> {
  const { rows } = await pool.query<{ id: string }>('SELECT id FROM webhook_endpoints WHERE user_id = $1 ORDER BY url', [ownerId]);
  return rows.map((row) => row.id);
}

/** Deliveries not yet finished (pending), claimed or not. */
export async function countPending(pool: pg.Pool | pg.Client): Promise<number> {
  const { rows } = await pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM webhook_deliveries WHERE status = 'pending'`);
  return rows[0]?.n ?? 0;
}
