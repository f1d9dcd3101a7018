import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { inject } from 'vitest';
import { migratedEmbeddedImage, openDatabase, splitSchema, type Database } from '../../src/db/database.ts';

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

/** The run's migrated image (test/setup/embedded-image.ts), read once per test process. */
let migratedImage: Promise<Blob> | undefined;
async function readMigratedImage(): Promise<Blob> {
  const file = inject('embeddedImageFile');
  // Outside vitest's global setup (a script using these helpers): made here instead.
  return file ? new Blob([await readFile(file)]) : migratedEmbeddedImage();
}

/**
 * `migrated`: an in-memory embedded store opens with every migration applied already (the
 * store's own `migrate()` then finds nothing to do), which saves its initdb. PostgreSQL schemas
 * start empty either way.
 */
export async function createTestStore(options: { persistent?: boolean; migrated?: boolean } = {}): Promise<TestStore> {
  const baseUrl = process.env.DATABASE_URL;
  if (baseUrl) return createPostgresSchema(baseUrl);

  const dataDir = options.persistent ? await mkdtemp(path.join(tmpdir(), 'devcard-test-')) : 'memory';
  const fromImage = options.migrated && dataDir === 'memory';
  return {
    kind: 'embedded',
    env: { DATA_DIR: dataDir },
    open: async () =>
      openDatabase({
        databaseUrl: undefined,
        dataDir,
        ...(fromImage && { embeddedImage: await (migratedImage ??= readMigratedImage()) }),
      }),
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
