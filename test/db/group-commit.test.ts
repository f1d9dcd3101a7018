import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type Database } from '../../src/db/database.ts';
import { createTestStore, type TestStore } from '../helpers/store.ts';

/**
 * Group commit (src/db/group-commit.ts) on PostgreSQL; the embedded store runs its statements
 * one by one and has nothing to group. A pool of two connections allows one group at a time, so
 * a slow statement holding it makes the next ones wait and go together.
 */
describe.skipIf(!process.env.DATABASE_URL)('group commit of autocommit statements', () => {
  let store: TestStore;
  let db: Database;

  beforeAll(async () => {
    store = await createTestStore();
    db = await openDatabase({ databaseUrl: store.env.DATABASE_URL, dataDir: 'memory', poolSize: 2 });
    await db.sql.exec('CREATE TABLE group_probe (n int PRIMARY KEY)');
  });

  afterAll(async () => {
    await db?.close();
    await store?.drop();
  });

  const insert = (n: number) =>
    db.grouped.query<{ n: number; xid: string }>('INSERT INTO group_probe VALUES ($1) RETURNING n, txid_current()::text AS xid', [n]);
  const holdTheGroup = () => db.grouped.query<{ xid: string }>('SELECT txid_current()::text AS xid, pg_sleep(0.3)::text');
  const stored = async () => (await db.sql.query<{ n: number }>('SELECT n FROM group_probe ORDER BY n')).map((row) => row.n);

  it('runs the statements that waited as one transaction, answering each with its own rows once committed', async () => {
    const held = holdTheGroup();
    const grouped = await Promise.all([3, 1, 2].map(insert));

    expect(grouped.map((rows) => rows.map((row) => row.n))).toEqual([[3], [1], [2]]);
    const [xid, ...others] = grouped.map((rows) => rows[0]?.xid);
    expect(others).toEqual([xid, xid]);
    expect((await held)[0]?.xid).not.toBe(xid);
    // Answered only after the commit: another connection sees every row.
    expect(await stored()).toEqual([1, 2, 3]);
  });

  it('fails only the statement that failed: the others of its group are committed, each once', async () => {
    const held = holdTheGroup();
    const results = await Promise.allSettled([
      insert(10),
      db.grouped.query('INSERT INTO group_probe VALUES (1 / $1::int)', [0]),
      insert(11),
      // A duplicate of a row already there: refused on its own too.
      insert(1),
    ]);
    await held;

    expect(results.map((result) => result.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'rejected']);
    expect(results[1]).toMatchObject({ reason: { code: '22012' } });
    expect(results[3]).toMatchObject({ reason: { code: '23505' } });
    expect(await stored()).toEqual([1, 2, 3, 10, 11]);
  });

  it('runs a statement at once, alone, when no group is running', async () => {
    const [first] = await insert(20);
    const [second] = await insert(21);

    expect(first?.xid).not.toBe(second?.xid);
    expect(await stored()).toEqual([1, 2, 3, 10, 11, 20, 21]);
  });
});
