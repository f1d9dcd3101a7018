import pg from 'pg';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { splitSchema } from '../../src/db/database.ts';
import { runAsOneSync, type NamedStatement } from '../../src/db/one-sync-group.ts';
import { createTestStore, type TestStore } from '../helpers/store.ts';

/** The exchange under group commit (src/db/one-sync-group.ts), on a real PostgreSQL connection. */
describe.skipIf(!process.env.DATABASE_URL)('a group of statements sent with one Sync', () => {
  let store: TestStore;
  let pool: pg.Pool;
  let client: pg.PoolClient;
  /** Messages the server answered the client with, by kind. */
  let answered: Record<string, number>;

  const insert = (n: number | string): NamedStatement => ({
    name: 'one_sync_insert',
    text: 'INSERT INTO one_sync_probe VALUES ($1) RETURNING n, txid_current()::text AS xid',
    params: [n],
  });
  const select = (name: string, text: string): NamedStatement => ({ name, text, params: [] });
  const stored = async () => (await pool.query<{ n: number }>('SELECT n FROM one_sync_probe ORDER BY n')).rows.map((row) => row.n);

  beforeAll(async () => {
    store = await createTestStore();
    const { connectionString, schema } = splitSchema(store.env.DATABASE_URL as string);
    pool = new pg.Pool({ connectionString, max: 3, options: `-c search_path="${schema}"` });
    await pool.query('CREATE TABLE one_sync_probe (n int PRIMARY KEY)');
  });

  beforeEach(async () => {
    client = await pool.connect();
    // A connection a test breaks reports it here, as database.ts listens while it holds one.
    client.on('error', () => {});
    answered = {};
    const connection = (client as unknown as { connection: NodeJS.EventEmitter }).connection;
    for (const kind of ['readyForQuery', 'parseComplete', 'commandComplete']) {
      connection.on(kind, () => (answered[kind] = (answered[kind] ?? 0) + 1));
    }
  });

  afterEach(() => client.release(true));

  afterAll(async () => {
    await pool?.end();
    await store?.drop();
  });

  it('commits the statements as one transaction, answered once, each with its own rows', async () => {
    const outcome = await runAsOneSync(client, [insert(1), insert(2), select('one_sync_nothing', 'SELECT 1 WHERE false')]);

    expect(outcome.committed).toBe(true);
    const rows = outcome.committed ? (outcome.rows as Array<Array<{ n: number; xid: string }>>) : [];
    expect(rows.map((set) => set.map((row) => row.n))).toEqual([[1], [2], []]);
    expect(rows[1]?.[0]?.xid).toBe(rows[0]?.[0]?.xid);
    // One answer to one Sync; each statement prepared once on this connection.
    expect(answered).toEqual({ readyForQuery: 1, parseComplete: 2, commandComplete: 3 });
    expect(await stored()).toEqual([1, 2]);

    // Prepared already: sent without Parse, and pg's own queries know it too.
    await runAsOneSync(client, [insert(3)]);
    await client.query({ name: 'one_sync_insert', text: insert(4).text, values: [4] });
    expect(answered.parseComplete).toBe(2);
    expect(await stored()).toEqual([1, 2, 3, 4]);
  });

  it('rolls back the whole group when one statement fails, and leaves the connection usable', async () => {
    const outcome = await runAsOneSync(client, [
      select('one_sync_before', 'SELECT 1 AS one'),
      insert(10),
      insert(1), // already there
      select('one_sync_after', 'SELECT 2 AS two'),
    ]);

    expect(outcome).toEqual({ committed: false });
    expect(await stored()).not.toContain(10);

    // The statements parsed before the failure exist on the server, the one after does not:
    // both are told apart, so each name is parsed exactly once in all.
    const again = await runAsOneSync(client, [select('one_sync_before', 'SELECT 1 AS one'), select('one_sync_after', 'SELECT 2 AS two')]);
    expect(again).toEqual({ committed: true, rows: [[{ one: 1 }], [{ two: 2 }]] });
    expect((await client.query('SELECT 3 AS three')).rows).toEqual([{ three: 3 }]);
  });

  it('reports a group rolled back when its session is ended under it', async () => {
    const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
    const running = runAsOneSync(client, [insert(20), select('one_sync_sleep', 'SELECT pg_sleep(5)')]);
    await new Promise((resolve) => setTimeout(resolve, 300));
    await pool.query('SELECT pg_terminate_backend($1)', [rows[0]?.pid]);

    // The server said so before closing (57P01), with a statement still running: nothing committed.
    await expect(running).resolves.toEqual({ committed: false });
    expect(await stored()).not.toContain(20);
  });

  it('rejects when the connection breaks with no answer, the outcome being unknown', async () => {
    const running = runAsOneSync(client, [insert(21), select('one_sync_sleep', 'SELECT pg_sleep(5)')]);
    await new Promise((resolve) => setTimeout(resolve, 300));
    (client as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();

    await expect(running).rejects.toThrow(/Connection terminated/);
  });
});
