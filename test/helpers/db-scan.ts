import type { Database } from '../../src/db/database.ts';

/**
 * Whole-database views for security tests: a log of rows written in any table (did a
 * request change anything?) and every text or JSON value (does a secret appear anywhere?).
 * Tables and columns come from the catalogue, so a table added later is covered too.
 */

const quote = (name: string) => `"${name.replaceAll('"', '""')}"`;

/**
 * Every table of the schema the store uses (the test schema on PostgreSQL). A partitioned table
 * counts once: its partitions hold its rows and inherit its row triggers.
 */
export async function listTables(db: Database): Promise<string[]> {
  const rows = await db.sql.query<{ table_name: string }>(
    `SELECT c.relname::text AS table_name FROM pg_class c
     WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p') AND NOT c.relispartition
     ORDER BY c.relname`,
  );
  return rows.map((row) => row.table_name);
}

/**
 * Logs the time of every row written (inserted, updated or deleted) in any table from now on,
 * with a row-level trigger per table. Returns a function that drains the log: the write times
 * since its last call, in epoch milliseconds (the database clock, the same host clock as
 * Date.now()). Test-only DDL in the test's own store; call once per store.
 */
export async function installRowWriteLog(db: Database): Promise<() => Promise<number[]>> {
  const tables = await listTables(db);
  if (tables.length === 0) throw new Error('no tables found: is the store migrated?');
  await db.sql.exec(`
    CREATE TABLE row_write_log (at double precision NOT NULL);
    CREATE FUNCTION log_row_write() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN INSERT INTO row_write_log VALUES (extract(epoch FROM clock_timestamp()) * 1000); RETURN NULL; END
    $$;
    ${tables.map((table) => `CREATE TRIGGER log_row_write AFTER INSERT OR UPDATE OR DELETE ON ${quote(table)} FOR EACH ROW EXECUTE FUNCTION log_row_write();`).join('\n')}
  `);
  return async () => (await db.sql.query<{ at: number | string }>('DELETE FROM row_write_log RETURNING at')).map((row) => Number(row.at));
}

export interface TextValue {
  table: string;
  column: string;
  value: string;
}

/** Every value of every text-like or JSON column (text, varchar, arrays of them, json, jsonb), as text. */
export async function allTextValues(db: Database): Promise<TextValue[]> {
  const tables = await listTables(db);
  const columns = await db.sql.query<{ table_name: string; column_name: string }>(
    `SELECT c.table_name, c.column_name
     FROM information_schema.columns c
     WHERE c.table_schema = current_schema() AND c.table_name = ANY($1::text[])
       AND (c.data_type IN ('text', 'character varying', 'character', 'json', 'jsonb')
            OR (c.data_type = 'ARRAY' AND c.udt_name IN ('_text', '_varchar', '_json', '_jsonb')))
     ORDER BY c.table_name, c.column_name`,
    [tables],
  );
  const values: TextValue[] = [];
  for (const { table_name: table, column_name: column } of columns) {
    const rows = await db.sql.query<{ value: string }>(
      `SELECT ${quote(column)}::text AS value FROM ${quote(table)} WHERE ${quote(column)} IS NOT NULL`,
    );
    for (const { value } of rows) values.push({ table, column, value });
  }
  return values;
}
