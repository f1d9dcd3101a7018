import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import { openDatabase, type Database } from '../../src/db/database.ts';
import { createPostgresSchema, type TestStore } from '../helpers/store.ts';

describe.skipIf(!process.env.DATABASE_URL)('DATABASE_POOL_SIZE', () => {
  let store: TestStore | undefined;
  let db: Database | undefined;

  afterEach(async () => {
    await db?.close();
    await store?.drop();
  });

  it('bounds the connections the service opens to PostgreSQL, however many statements wait', async () => {
    store = await createPostgresSchema(process.env.DATABASE_URL as string);
    const config = loadConfig({ ...store.env, DATA_DIR: 'memory', DATABASE_POOL_SIZE: '2' });
    // As app.ts and worker.ts open it: from the whole config.
    db = await openDatabase(config);
    const sql = db.sql;
    const backends = await Promise.all(
      Array.from({ length: 6 }, () => sql.query<{ pid: number }>('SELECT pg_backend_pid() AS pid, pg_sleep(0.05)')),
    );
    expect(new Set(backends.map(([row]) => row?.pid)).size).toBe(2);
  });
});
