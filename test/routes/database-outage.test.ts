import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/app.ts';
import { openDatabase, splitSchema, type Database } from '../../src/db/database.ts';
import { SERVICE_UNAVAILABLE_RETRY_AFTER_SECONDS } from '../../src/errors.ts';
import { buildTestApp, testConfig } from '../helpers/app.ts';
import { createTestStore, type TestStore } from '../helpers/store.ts';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.ts';
import { signUp, uniqueUsername, type Session } from '../helpers/users.ts';
import { waitFor } from '../helpers/wait.ts';

/** A store that cannot answer is an outage to wait out (503 with Retry-After), never a 500. */
function expectUnavailable(res: LightMyRequestResponse, what: string) {
  expect(res.statusCode, `${what}: ${res.body}`).toBe(503);
  expect(res.json(), what).toEqual({ error: { code: 'SERVICE_UNAVAILABLE', message: expect.any(String) } });
  expect(res.headers['retry-after'], what).toBe(String(SERVICE_UNAVAILABLE_RETRY_AFTER_SECONDS));
}

/** A public view, a login and an authenticated webhook route: the three kinds of work the API does. */
const routes = (owner: Session): Array<[string, InjectOptions]> => [
  ['a public view', { method: 'GET', url: `/api/u/${owner.username}` }],
  ['login', { method: 'POST', url: '/auth/login', payload: { login: owner.username, password: 'password-123' } }],
  ['an authenticated webhook route', { method: 'GET', url: '/api/webhooks', headers: owner.auth }],
];

describe('a closed store', () => {
  it('answers 503 SERVICE_UNAVAILABLE with Retry-After on every kind of route, health included', async () => {
    const t = await buildTestApp({ env: { WEBHOOK_WORKER: 'off' } });
    try {
      const owner = await signUp(t.app, uniqueUsername('closed'));
      await t.db.close();
      for (const [what, request] of [...routes(owner), ['health', { method: 'GET', url: '/health' }] as [string, InjectOptions]]) {
        expectUnavailable(await t.app.inject(request), what);
      }
    } finally {
      await t.app.close();
      await t.store.drop();
    }
  });
});

// The app's connections must go through something a test can cut or kill: PostgreSQL only.
describe.skipIf(!process.env.DATABASE_URL)('PostgreSQL becomes unavailable under the app', { timeout: 60_000 }, () => {
  const applicationName = `outage_${process.pid}_${Date.now().toString(36)}`;
  let store: TestStore;
  let proxy: TcpProxy;
  let db: Database;
  let app: FastifyInstance;
  let owner: Session;
  let direct: string;
  let schema: string;

  beforeAll(async () => {
    store = await createTestStore();
    const split = splitSchema(store.env.DATABASE_URL!);
    direct = split.connectionString;
    schema = split.schema!;
    const target = new URL(direct);
    proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port || 5432) });
    const viaProxy = new URL(store.env.DATABASE_URL!);
    viaProxy.hostname = '127.0.0.1';
    viaProxy.port = String(proxy.port);
    // Names the app's sessions in pg_stat_activity, so the test can terminate exactly those.
    viaProxy.searchParams.set('application_name', applicationName);
    const config = testConfig(store, { DATABASE_URL: viaProxy.toString(), WEBHOOK_WORKER: 'off' });
    db = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: 'memory', poolSize: 5 });
    await db.migrate();
    app = await buildApp({ config, db, logger: false });
    await app.ready();
    owner = await signUp(app, uniqueUsername('outage'));
  });
  afterAll(async () => {
    await app?.close();
    await db?.close();
    await proxy?.close();
    await store?.drop();
  });

  const expectWorking = async () => {
    for (const [what, request] of [...routes(owner), ['health', { method: 'GET', url: '/health' }] as [string, InjectOptions]]) {
      await waitFor(async () => (await app.inject(request)).statusCode === 200, { timeoutMs: 10_000, what: `${what} to work again` });
    }
  };

  it('while its connections are cut and new ones refused; works again once it is back', async () => {
    await expectWorking();
    proxy.cut();
    for (const [what, request] of routes(owner)) expectUnavailable(await app.inject(request), what);
    expectUnavailable(await app.inject({ method: 'GET', url: '/health' }), 'health');
    proxy.restore();
    await expectWorking();
  });

  it('when the server terminates the connection a query is running on (pg_terminate_backend)', async () => {
    await expectWorking();
    const admin = new pg.Client({ connectionString: direct });
    await admin.connect();
    try {
      // Another session's lock holds each route's first query on its connection, so the
      // termination meets a query in flight rather than an idle connection the pool replaces.
      await admin.query('BEGIN');
      await admin.query(`LOCK TABLE "${schema}".users, "${schema}".webhook_endpoints IN ACCESS EXCLUSIVE MODE`);
      const pending = routes(owner).map(([what, request]) => app.inject(request).then((res) => [what, res] as const));
      // pg_stat_activity is read once per transaction unless its snapshot is cleared.
      const waiting = async () =>
        (
          await admin.query<{ n: number }>(
            `SELECT pg_stat_clear_snapshot(), (SELECT count(*)::int FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock') AS n`,
            [applicationName],
          )
        ).rows[0]!.n;
      await waitFor(async () => (await waiting()) === pending.length, { timeoutMs: 10_000, what: 'every route to wait on the lock' });
      await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1', [applicationName]);
      for (const [what, res] of await Promise.all(pending)) expectUnavailable(res, what);
    } finally {
      await admin.query('ROLLBACK').catch(() => {});
      await admin.end();
    }
    await expectWorking();
  });
});
