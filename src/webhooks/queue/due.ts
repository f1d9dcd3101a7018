import type { SqlRunner } from '../../db/sql-runner.ts';

const NEXT_DUE_IN_MS = `SELECT greatest(0, ceil(extract(epoch FROM (due_at - now())) * 1000))::int AS delay_ms
   FROM webhook_queue
   WHERE claim_token IS NULL
   ORDER BY due_at
   LIMIT 1`;

/**
 * Milliseconds until the earliest unclaimed pending delivery is due (0 if overdue), or
 * undefined when none waits. Measured by the database clock, which is the one claims use.
 */
export async function nextDueInMs(sql: SqlRunner): Promise<number | undefined> {
  const rows = await sql.query<{ delay_ms: number | null }>(NEXT_DUE_IN_MS);
  const delay = rows[0]?.delay_ms;
  return delay === null || delay === undefined ? undefined : delay;
}

const COUNT_DUE = `SELECT count(*)::int AS n FROM webhook_queue
   WHERE due_at <= now() AND (claim_token IS NULL OR lease_until <= now())`;

/** Pending deliveries due now, claimed or not (an expired lease is due again): the backlog. */
export async function countDue(sql: SqlRunner): Promise<number> {
  const rows = await sql.query<{ n: number }>(COUNT_DUE);
  return rows[0]?.n ?? 0;
}
