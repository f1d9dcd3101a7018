/**
 * Pending deliveries written straight into the queue with one `INSERT … SELECT generate_series`
 * (PostgreSQL): the fast way to build a backlog of a million rows. Rows are spread round-robin
 * over `endpointIds`, each its own event with the body a `card.viewed` dispatch writes.
 */
import type pg from 'pg';
import { DUE_CHANNEL } from '../../src/webhooks/queue/channels.ts';

export async function insertDeliveries(
  pool: pg.Pool,
  params: { endpointIds: readonly string[]; ownerId: string; count: number; dueInMs: number },
): Promise<void> {
  // The bytes envelope.ts renders for such a view: keys in the envelope's order, no spaces.
  await pool.query(
    `WITH rows AS MATERIALIZED (
       SELECT g, webhook_uuid7() AS event_id, ($1::uuid[])[1 + g % cardinality($1::uuid[])] AS endpoint_id
       FROM generate_series(1, $3::int) AS g
     ),
     events AS (
       INSERT INTO webhook_events (id, event_type, body)
       SELECT event_id, 'card.viewed',
              format('{"id":"%s","type":"card.viewed","timestamp":"%s","data":{"userId":"%s","cardId":null,"viewer":null,"source":"link"}}',
                     event_id, to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'), $2::uuid)
       FROM rows
     )
     INSERT INTO webhook_queue (endpoint_id, delivery_id, event_id, event_type, due_at)
     SELECT endpoint_id, webhook_uuid7(), event_id, 'card.viewed', now() + ($4::int + g % 1000) * interval '1 millisecond'
     FROM rows`,
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
  const { rows } = await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM webhook_queue');
  return rows[0]?.n ?? 0;
}
