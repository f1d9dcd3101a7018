import { nextSendAt, pacedOut } from './pacing.ts';
import type { SqlRunner } from '../../db/sql-runner.ts';

// Two parts: the earliest unclaimed row of an endpoint that may send now, and the next turn of
// each paced endpoint that may not but has unclaimed rows (found through the partial index of paced
// endpoints). Rows waiting for a turn are due already: counted as due, they would wake the worker
// at once, over and over, until their turn came.
// Not greatest(0, …) in SQL: greatest ignores a NULL, and an empty queue would read as due now.
const NEXT_DUE_IN_MS = `SELECT ceil(extract(epoch FROM (min(at) - now())) * 1000)::int AS delay_ms
   FROM (
     (SELECT q.due_at AS at
      FROM webhook_queue q
      LEFT JOIN webhook_endpoints e ON e.id = q.endpoint_id
      WHERE q.claim_token IS NULL AND NOT ${pacedOut('e')}
      ORDER BY q.due_at
      LIMIT 1)
     UNION ALL
     (SELECT ${nextSendAt('e')}
      FROM webhook_endpoints e
      WHERE ${pacedOut('e')}
        AND EXISTS (SELECT 1 FROM webhook_queue q WHERE q.endpoint_id = e.id AND q.claim_token IS NULL))
   ) next`;

/**
 * Milliseconds until the earliest unclaimed pending delivery may be claimed — it is due and, at a
 * paced endpoint, its endpoint has a turn — (0 if now), or undefined when none waits. Measured by
 * the database clock, which is the one claims use.
 */
export async function nextDueInMs(sql: SqlRunner): Promise<number | undefined> {
  const rows = await sql.query<{ delay_ms: number | null }>(NEXT_DUE_IN_MS);
  const delay = rows[0]?.delay_ms;
  return delay === null || delay === undefined ? undefined : Math.max(0, delay);
}

const COUNT_DUE = `SELECT count(*)::int AS n FROM webhook_queue
   WHERE due_at <= now() AND (claim_token IS NULL OR lease_until <= now())`;

/** Pending deliveries due now, claimed or not (an expired lease is due again): the backlog. */
export async function countDue(sql: SqlRunner): Promise<number> {
  const rows = await sql.query<{ n: number }>(COUNT_DUE);
  return rows[0]?.n ?? 0;
}
