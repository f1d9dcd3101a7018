import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/app.ts';
import type { SqlRunner } from '../../src/db/sql-runner.ts';
import { buildMetricsListener } from '../../src/metrics-listener.ts';
import { buildTestApp, testConfig } from '../helpers/app.ts';
import { startReceiver } from '../helpers/receiver.ts';
import { createTestStore } from '../helpers/store.ts';
import { signUp, uniqueUsername } from '../helpers/users.ts';
import { waitFor } from '../helpers/wait.ts';
import { createEndpoint } from '../helpers/webhook-api.ts';

const TOKEN = 'metrics-token-that-is-long-enough-0123456789';
const unauthorized = { error: { code: 'UNAUTHORIZED', message: expect.any(String) } };
const scrape = (app: FastifyInstance, headers: Record<string, string> = {}) => app.inject({ method: 'GET', url: '/metrics', headers });
/** The value of one series in a scrape. */
const seriesValue = (text: string, series: string) => {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
};

describe('GET /metrics', () => {
  const cleanups: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });
  const start = async (env: Record<string, string>) => {
    const t = await buildTestApp({ env });
    cleanups.push(() => t.close());
    return t;
  };

  it('scrapes read the last count of the backlog: however many, they run no query', async () => {
    const store = await createTestStore();
    const db = await store.open();
    await db.migrate();
    cleanups.push(async () => {
      await db.close();
      await store.drop();
    });
    let backlogCounts = 0;
    const countingSql: SqlRunner = {
      ...db.sql,
      query: (text, params) => {
        if (/count\(\*\)[\s\S]*FROM webhook_queue[\s\S]*due_at <= now\(\)/.test(text)) backlogCounts++;
        return db.sql.query(text, params);
      },
    };
    // One count when the app starts; the next one would be an hour later.
    const config = testConfig(store, { METRICS_BACKLOG_REFRESH_MS: '3600000', WEBHOOK_WORKER: 'off' });
    const app = await buildApp({ config, db: { ...db, sql: countingSql }, logger: false });
    await app.ready();
    cleanups.push(() => app.close());
    for (let i = 0; i < 30; i++) {
      const res = await scrape(app);
      expect(res.statusCode).toBe(200);
      expect(seriesValue(res.body, 'webhook_due_backlog')).toBe(0);
    }
    expect(backlogCounts, 'counts besides the one at start-up').toBeLessThanOrEqual(1);
    await waitFor(() => backlogCounts === 1, { what: 'the count at start-up' });
  });

  it('the backlog gauge still moves, at the refresh interval', async () => {
    const t = await start({ WEBHOOK_WORKER: 'off', METRICS_BACKLOG_REFRESH_MS: '50' });
    const receiver = await startReceiver();
    cleanups.push(() => receiver.close());
    const owner = await signUp(t.app, uniqueUsername('backlog'));
    const endpoint = await createEndpoint(t.app, owner, `${receiver.origin}/backlog`);
    for (let i = 0; i < 3; i++) {
      expect((await t.app.inject({ method: 'POST', url: `/api/webhooks/${endpoint.id}/test`, headers: owner.auth })).statusCode).toBe(202);
    }
    // Polled slowly: scrapes are rate limited too.
    await waitFor(async () => seriesValue((await scrape(t.app)).body, 'webhook_due_backlog') === 3, {
      intervalMs: 200,
      what: 'a backlog of 3',
    });
  });

  it('with METRICS_TOKEN, needs it as a bearer token (401 with the error shape otherwise)', async () => {
    const t = await start({ METRICS_TOKEN: TOKEN });
    for (const headers of [
      {} as Record<string, string>,
      { authorization: 'Bearer wrong' },
      { authorization: `Bearer ${TOKEN}x` },
      { authorization: TOKEN },
      { authorization: `Basic ${TOKEN}` },
    ]) {
      const res = await scrape(t.app, headers);
      expect(res.statusCode, JSON.stringify(headers)).toBe(401);
      expect(res.json()).toEqual(unauthorized);
    }
    const res = await scrape(t.app, { authorization: `Bearer ${TOKEN}` });
    expect(res.statusCode).toBe(200);
    expect(res.body).toContain('webhook_due_backlog');
  });

  it('without a token, outside production, is open', async () => {
    const t = await start({});
    expect((await scrape(t.app)).statusCode).toBe(200);
  });

  it('in production, is not served by the API listener unless a token protects it', async () => {
    const open = await start({ NODE_ENV: 'production' });
    const res = await scrape(open.app);
    expect(res.statusCode).toBe(404);
    expect(res.json().error.code).toBe('ROUTE_NOT_FOUND');

    const guarded = await start({ NODE_ENV: 'production', METRICS_TOKEN: TOKEN });
    expect((await scrape(guarded.app)).statusCode).toBe(401);
    expect((await scrape(guarded.app, { authorization: `Bearer ${TOKEN}` })).statusCode).toBe(200);
  });

  it('with METRICS_PORT, is served by its own listener only (token still required when set)', async () => {
    const t = await start({ METRICS_PORT: '0', METRICS_TOKEN: TOKEN });
    const listener = await buildMetricsListener(t.app);
    const address = await listener.listen({ port: 0, host: '127.0.0.1' });
    cleanups.push(() => listener.close());

    expect((await scrape(t.app, { authorization: `Bearer ${TOKEN}` })).statusCode, 'not on the API listener').toBe(404);
    const unauthenticated = await fetch(`${address}/metrics`);
    expect(unauthenticated.status).toBe(401);
    expect(await unauthenticated.json()).toEqual(unauthorized);
    const res = await fetch(`${address}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('webhook_deliveries_total');
    const other = await fetch(`${address}/health`);
    expect(other.status, 'nothing else on the metrics listener').toBe(404);
    expect(((await other.json()) as { error: { code: string } }).error.code).toBe('ROUTE_NOT_FOUND');
  });

  it('is rate limited per address like the public routes', async () => {
    const t = await start({ RATE_LIMIT_PUBLIC_PER_MINUTE: '3' });
    for (let i = 0; i < 3; i++) expect((await scrape(t.app)).statusCode).toBe(200);
    const limited = await scrape(t.app);
    expect(limited.statusCode).toBe(429);
    expect(limited.json().error.code).toBe('RATE_LIMITED');
  });
});
