/**
 * A fresh store per scenario: a new schema in the PostgreSQL of DATABASE_URL (dropped after,
 * made the way the test suite makes its schemas), or a new embedded store in a temp folder.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { splitSchema } from '../../src/db/database.ts';
import { createPostgresSchema } from '../../test/helpers/store.ts';

export type StoreKind = 'postgres' | 'embedded';

export interface BenchStore {
  kind: StoreKind;
  /** Points the service at this store. */
  env: Record<string, string>;
  /** Direct SQL on the scenario's schema (PostgreSQL only: the embedded store belongs to one process). */
  pool: pg.Pool | undefined;
  drop(): Promise<void>;
}

export async function createStore(kind: StoreKind, databaseUrl: string): Promise<BenchStore> {
  if (kind === 'embedded') {
    const dataDir = await mkdtemp(path.join(tmpdir(), 'devcard-bench-'));
    return { kind, env: { DATA_DIR: dataDir }, pool: undefined, drop: () => rm(dataDir, { recursive: true, force: true }) };
  }
  const store = await createPostgresSchema(databaseUrl);
  const { connectionString, schema } = splitSchema(store.env.DATABASE_URL as string);
  const pool = new pg.Pool({ connectionString, max: 2, options: `-c search_path="${schema}"` });
  return {
    kind,
    env: store.env,
    pool,
    async drop() {
      await pool.end();
      await store.drop();
    },
  };
}
