import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { openDatabase, splitSchema, type Database } from '../../src/db/database.ts';

/**
 * An isolated store for one test file: a fresh schema in the PostgreSQL of DATABASE_URL when
 * that is set, otherwise the embedded store (in memory, or in a temp folder when it must
 * survive closing and reopening). `drop()` removes every trace.
 */
export interface TestStore {
  kind: 'postgres' | 'embedded';
  /** Environment that points a config (or a child process) at this store. */
  env: Record<string, string>;
  open(): Promise<Database>;
  drop(): Promise<void>;
}

export async function createTestStore(options: { persistent?: boolean } = {}): Promise<TestStore> {
  const baseUrl = process.env.DATABASE_URL;
  if (baseUrl) return createPostgresSchema(baseUrl);

  const dataDir = options.persistent ? await mkdtemp(path.join(tmpdir(), 'devcard-test-')) : 'memory';
  return {
    kind: 'embedded',
    env: { DATA_DIR: dataDir },
    open: () => openDatabase({ databaseUrl: undefined, dataDir }),
    drop: async () => {
      if (dataDir !== 'memory') await rm(dataDir, { recursive: true, force: true });
    },
  };
}

export async function createPostgresSchema(baseUrl: string): Promise<TestStore> {
  const { connectionString } = splitSchema(baseUrl);
  const schema = `test_${randomUUID().replaceAll('-', '').slice(0, 16)}`;
  const admin = new pg.Client({ connectionString });
  await admin.connect();
  await admin.query(`CREATE SCHEMA "${schema}"`);
  await admin.end();
  const url = new URL(connectionString);
  url.searchParams.set('schema', schema);
  const databaseUrl = url.toString();
  return {
    kind: 'postgres',
    env: { DATABASE_URL: databaseUrl },
    open: () => openDatabase({ databaseUrl, dataDir: 'memory', poolSize: 10 }),
    drop: async () => {
      const client = new pg.Client({ connectionString });
      await client.connect();
      await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await client.end();
    },
  };
}
