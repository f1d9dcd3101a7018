import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/app.ts';
import { loadConfig, type Config } from '../../src/config.ts';
import type { Database } from '../../src/db/database.ts';
import type { LookupFn } from '../../src/webhooks/dns-lookup.ts';
import { createTestStore, type TestStore } from './store.ts';

export const TEST_ENV: Record<string, string> = {
  RATE_LIMIT_AUTH_PER_MINUTE: '100000',
  RATE_LIMIT_PUBLIC_PER_MINUTE: '100000',
  RATE_LIMIT_API_PER_MINUTE: '100000',
  NODE_ENV: 'test',
  LOG_LEVEL: 'silent',
  JWT_SECRET: 'test-jwt-secret-that-is-long-enough-0123456789',
  WEBHOOK_ENCRYPTION_KEY: Buffer.alloc(32, 7).toString('base64'),
  WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'true',
  WEBHOOK_RETRY_SCHEDULE: '200ms,400ms,800ms',
  WEBHOOK_TIMEOUT_MS: '2000',
};

export function testConfig(store: TestStore | undefined, env: Record<string, string> = {}): Config {
  return loadConfig({ DATA_DIR: 'memory', ...TEST_ENV, ...store?.env, ...env });
}

export interface TestApp {
  app: FastifyInstance;
  db: Database;
  config: Config;
  store: TestStore;
  /** Closes the app and its database; drops the store unless `keepStore`. */
  close(options?: { keepStore?: boolean }): Promise<void>;
}

/** A fresh app on its own migrated store (or on `store`, to share one between apps). */
export async function buildTestApp(options: { env?: Record<string, string>; store?: TestStore; lookup?: LookupFn } = {}): Promise<TestApp> {
  const store = options.store ?? (await createTestStore({ migrated: true }));
  const config = testConfig(store, options.env);
  const db = await store.open();
  await db.migrate();
  const app = await buildApp({ config, db, logger: false, lookup: options.lookup });
  await app.ready();
  return {
    app,
    db,
    config,
    store,
    async close({ keepStore = false } = {}) {
      await app.close();
      await db.close();
      if (!keepStore) await store.drop();
    },
  };
}
