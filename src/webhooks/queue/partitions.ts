import type { SqlRunner } from '../../db/sql-runner.ts';

/**
 * Daily partitions of the tables that grow with every delivery, on their UUIDv7 keys (see the
 * migration 20261130090000_delivery_queue_and_log): retention drops a day with one statement
 * instead of deleting its rows one by one (bench/README.md, "Growth"). Rows outside every day
 * partition land in each table's DEFAULT partition, so an insert never depends on this job.
 */
export const PARTITIONED_TABLES = ['webhook_delivery_log', 'webhook_earlier_attempts', 'webhook_events'] as const;

const DAY_MS = 86_400_000;
const DAY_SUFFIX = /_p(\d{4})(\d{2})(\d{2})$/;

/** The smallest UUIDv7 of the millisecond `at`: a partition bound. */
export function uuid7Floor(at: Date): string {
  const hex = at.getTime().toString(16).padStart(12, '0');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-0000-0000-000000000000`;
}

function startOfUtcDay(at: Date): Date {
  return new Date(Math.floor(at.getTime() / DAY_MS) * DAY_MS);
}

function partitionName(table: string, day: Date): string {
  return `${table}_p${day.toISOString().slice(0, 10).replaceAll('-', '')}`;
}

/**
 * Creates the day partitions from tomorrow through `daysAhead` days from `now` that do not
 * exist yet. Today's is not created here: the DEFAULT partition may already hold today's rows,
 * and a new partition may not overlap rows there. Returns the names created.
 */
export async function createDayPartitions(sql: SqlRunner, now: Date, daysAhead: number): Promise<string[]> {
  const created: string[] = [];
  const today = startOfUtcDay(now);
  for (let offset = 1; offset <= daysAhead; offset++) {
    const day = new Date(today.getTime() + offset * DAY_MS);
    const next = new Date(day.getTime() + DAY_MS);
    for (const table of PARTITIONED_TABLES) {
      const name = partitionName(table, day);
      const exists = await sql.query<{ found: boolean }>('SELECT to_regclass($1) IS NOT NULL AS found', [name]);
      if (exists[0]?.found) continue;
      await sql.exec(
        `CREATE TABLE IF NOT EXISTS "${name}" PARTITION OF "${table}" FOR VALUES FROM ('${uuid7Floor(day)}') TO ('${uuid7Floor(next)}')`,
      );
      created.push(name);
    }
  }
  return created;
}

/**
 * Drops the day partitions that ended before `olderThan`, except a day of which a queued delivery
 * still waits: its event's bytes are in that day. Returns the names dropped.
 */
export async function dropDayPartitions(sql: SqlRunner, olderThan: Date): Promise<string[]> {
  const rows = await sql.query<{ name: string }>(
    // Parents resolved through the search path, as every statement here is: only this schema's.
    `SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
     WHERE i.inhparent IN (SELECT to_regclass(t) FROM unnest($1::text[]) AS t)`,
    [PARTITIONED_TABLES],
  );
  const dropped: string[] = [];
  for (const { name } of rows) {
    const match = DAY_SUFFIX.exec(name);
    if (!match) continue;
    const dayEnd = new Date(Date.UTC(Number(match[1]), Number(match[2]) - 1, Number(match[3])) + DAY_MS);
    if (dayEnd > olderThan) continue;
    const dayStart = new Date(dayEnd.getTime() - DAY_MS);
    // Queue rows carry their creation time in their UUIDv7 id (created_at is set only for older ids).
    const waiting = await sql.query<{ found: boolean }>(
      'SELECT EXISTS (SELECT 1 FROM webhook_queue WHERE delivery_id >= $1::uuid AND delivery_id < $2::uuid) AS found',
      [uuid7Floor(dayStart), uuid7Floor(dayEnd)],
    );
    if (waiting[0]?.found) continue;
    await sql.exec(`DROP TABLE IF EXISTS "${name}"`);
    dropped.push(name);
  }
  return dropped;
}
