import type { SqlRunner } from '../../src/db/sql-runner.ts';

/** `sql`, recording each statement's plan (EXPLAIN, JSON) into `plans` before running it as the code does. */
export function explaining(sql: SqlRunner, plans: unknown[]): SqlRunner {
  return {
    async query<T>(text: string, params?: unknown[]) {
      const [row] = await sql.query<{ 'QUERY PLAN': unknown }>(`EXPLAIN (FORMAT JSON) ${text}`, params);
      plans.push(typeof row?.['QUERY PLAN'] === 'string' ? JSON.parse(row['QUERY PLAN']) : row?.['QUERY PLAN']);
      return sql.query<T>(text, params);
    },
    exec: (script) => sql.exec(script),
  };
}
