import { randomUUID } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BODY_LIMIT_BYTES } from '../src/app.ts';
import { PORTAL_DIR, PORTAL_PATH } from '../src/routes/portal.ts';
import { DELIVERIES_MAX_LIMIT } from '../src/webhooks/endpoints/schemas.ts';
import { SUBSCRIBABLE_EVENT_TYPES } from '../src/webhooks/events.ts';
import type { TestApp } from './helpers/app.ts';
import { asUser, signUp, type Session } from './helpers/users.ts';
import { buildWebhookTestApp } from './helpers/webhook-api.ts';

/**
 * Limits that keep one client from exhausting the service: the body size, rate limits on every
 * route that does work for anonymous or authenticated callers, the page size, and the events
 * array. (The per-endpoint delivery cap is in test/webhooks/delivery-cap.test.ts.)
 */

const rateLimited = { error: { code: 'RATE_LIMITED', message: expect.stringMatching(/retry in \d+ s/) } };

describe('body size limit', () => {
  let t: TestApp;
  let user: Session;
  let endpointId: string;

  beforeAll(async () => {
    t = await buildWebhookTestApp();
    user = await signUp(t.app);
    const res = await asUser(t.app, user, {
      method: 'POST',
      url: '/api/webhooks',
      payload: { url: 'https://hooks.example.com/a', events: ['card.viewed'] },
    });
    endpointId = res.json().id;
  });
  afterAll(async () => t.close());

  /** A JSON object of exactly `bytes` bytes. */
  const bodyOf = (bytes: number) => {
    const shell = JSON.stringify({ title: '' });
    return JSON.stringify({ title: 'x'.repeat(bytes - shell.length) });
  };

  const bodyRoutes = () =>
    [
      ['POST', '/auth/register'],
      ['POST', '/auth/login'],
      ['POST', '/api/cards'],
      ['POST', '/api/webhooks'],
      ['PATCH', `/api/webhooks/${endpointId}`],
      ['PATCH', `/api/webhooks/${endpointId}/rotate-secret`],
      ['POST', `/api/webhooks/${endpointId}/recover`],
    ] as const;

  it(`answers 413 PAYLOAD_TOO_LARGE past ${BODY_LIMIT_BYTES} bytes on every route with a body, and stores nothing`, async () => {
    expect(BODY_LIMIT_BYTES).toBe(64 * 1024);
    const before = await Promise.all([t.db.prisma.user.count(), t.db.prisma.card.count(), t.db.prisma.webhookEndpoint.findMany()]);
    for (const [method, url] of bodyRoutes()) {
      const payload = bodyOf(BODY_LIMIT_BYTES + 1);
      expect(Buffer.byteLength(payload)).toBe(BODY_LIMIT_BYTES + 1);
      const res = await asUser(t.app, user, { method, url, payload, headers: { 'content-type': 'application/json' } });
      expect(res.statusCode, `${method} ${url}`).toBe(413);
      expect(res.json()).toEqual({ error: { code: 'PAYLOAD_TOO_LARGE', message: expect.any(String) } });
    }
    const after = await Promise.all([t.db.prisma.user.count(), t.db.prisma.card.count(), t.db.prisma.webhookEndpoint.findMany()]);
    expect(after).toEqual(before);
  });

  it('reads a body of exactly the limit (then validates it: 400, not 413)', async () => {
    for (const [method, url] of bodyRoutes()) {
      const res = await asUser(t.app, user, {
        method,
        url,
        payload: bodyOf(BODY_LIMIT_BYTES),
        headers: { 'content-type': 'application/json' },
      });
      expect(res.statusCode, `${method} ${url}`).toBe(400);
      expect(res.json().error.code).toBe('VALIDATION_ERROR');
    }
  });

  it('bounds the page size of the delivery log', async () => {
    const page = (query: string) => asUser(t.app, user, { method: 'GET', url: `/api/webhooks/${endpointId}/deliveries?${query}` });
    expect((await page(`limit=${DELIVERIES_MAX_LIMIT}`)).statusCode).toBe(200);
    for (const limit of [DELIVERIES_MAX_LIMIT + 1, 1_000, 1e9, 2 ** 53]) {
      const res = await page(`limit=${limit}`);
      expect(res.statusCode, `limit=${limit}`).toBe(400);
      expect(res.json().error).toMatchObject({ code: 'VALIDATION_ERROR', message: expect.stringMatching(/^querystring\.limit: /) });
    }
  });

  it('bounds the events array: each subscribable type at most once', async () => {
    const create = (events: unknown) =>
      asUser(t.app, user, { method: 'POST', url: '/api/webhooks', payload: { url: `https://hooks.example.com/${randomUUID()}`, events } });
    expect((await create([...SUBSCRIBABLE_EVENT_TYPES])).statusCode).toBe(201);
    for (const events of [
      [...SUBSCRIBABLE_EVENT_TYPES, SUBSCRIBABLE_EVENT_TYPES[0]], // one more than there are types
      ['card.viewed', 'card.viewed'],
      Array.from({ length: 3_000 }, () => 'card.viewed'),
    ]) {
      const res = await create(events);
      expect(res.statusCode, `${events.length} events`).toBe(400);
      expect(res.json().error.code).toBe('VALIDATION_ERROR');
      const patch = await asUser(t.app, user, { method: 'PATCH', url: `/api/webhooks/${endpointId}`, payload: { events } });
      expect(patch.statusCode, `PATCH ${events.length} events`).toBe(400);
    }
    const stored = await t.db.prisma.webhookEndpoint.findUniqueOrThrow({ where: { id: endpointId } });
    expect(stored.events).toEqual(['card.viewed']);
  });
});

describe('rate limits on every route that does work for a caller', () => {
  const LIMIT = 2;
  let t: TestApp;
  let endpointIdOf: (user: Session, url?: string) => Promise<string>;

  beforeAll(async () => {
    t = await buildWebhookTestApp({
      env: {
        RATE_LIMIT_AUTH_PER_MINUTE: String(LIMIT),
        RATE_LIMIT_PUBLIC_PER_MINUTE: String(LIMIT),
        RATE_LIMIT_API_PER_MINUTE: String(LIMIT),
      },
    });
    endpointIdOf = async (user, url = `https://hooks.example.com/${randomUUID()}`) => {
      const row = await t.db.prisma.webhookEndpoint.create({
        data: { userId: user.id, url, secretEncrypted: 'sealed', events: ['card.viewed'] },
      });
      return row.id;
    };
  });
  afterAll(async () => t.close());

  // Keyed by client address: a fresh address per route, so routes do not share a budget here.
  const BY_ADDRESS = [
    ['POST', '/auth/register'],
    ['POST', '/auth/login'],
    ['GET', '/api/u/:username'],
    ['GET', '/api/u/card/:cardId'],
    ['GET', '/api/u/:username/card/:cardId'],
    // Its budget is the smaller of the public limit and METRICS_SCRAPES_PER_MINUTE.
    ['GET', '/metrics'],
  ] as const;
  // Keyed by user: a fresh user per route.
  const BY_USER = [
    ['POST', '/api/cards'],
    ['GET', '/api/cards'],
    ['POST', '/api/cards/:id/save'],
    ['GET', '/api/webhooks/event-types'],
    ['POST', '/api/webhooks'],
    ['GET', '/api/webhooks'],
    ['GET', '/api/webhooks/:id'],
    ['PATCH', '/api/webhooks/:id'],
    ['DELETE', '/api/webhooks/:id'],
    ['PATCH', '/api/webhooks/:id/rotate-secret'],
    ['POST', '/api/webhooks/:id/extend-previous-secret'],
    ['GET', '/api/webhooks/:id/deliveries'],
    ['GET', '/api/webhooks/:id/deliveries/:deliveryId'],
    ['GET', '/api/webhooks/:id/deliveries/:deliveryId/attempts'],
    ['GET', '/api/webhooks/:id/health'],
    ['POST', '/api/webhooks/:id/deliveries/:deliveryId/redeliver'],
    ['POST', '/api/webhooks/:id/test'],
    ['POST', '/api/webhooks/:id/recover'],
    // Its own, smaller budget (min of the API limit and VERIFY_RECEIVER_PER_MINUTE).
    ['POST', '/api/webhooks/:id/verify-receiver'],
  ] as const;
  /** The portal's page and files: not API operations (so not in OpenAPI), keyed by address like the public views. */
  const PAGES = readdirSync(PORTAL_DIR).map((name) => ['GET', name === 'index.html' ? PORTAL_PATH : `${PORTAL_PATH}/${name}`] as const);
  /** Not rate limited, and why: operations endpoints for the operator. */
  const EXEMPT = ['GET /health'];

  const fill = (path: string, values: Record<string, string>) => path.replace(/:(\w+)/g, (_, name: string) => values[name]!);
  // Bodies valid or not: the limit is checked before validation, which is what matters here.
  const PAYLOADS: Record<string, unknown> = { POST: { nothing: true }, PATCH: { nothing: true } };

  it('every documented route is rate limited or knowingly exempt', async () => {
    const doc = (await t.app.inject({ method: 'GET', url: '/docs/json' })).json() as { paths: Record<string, Record<string, unknown>> };
    const documented = Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`));
    const covered = [...BY_ADDRESS, ...BY_USER].map(([method, path]) => `${method} ${path.replace(/:(\w+)/g, '{$1}')}`);
    expect([...covered, ...EXEMPT].sort()).toEqual(documented.sort());
  });

  it.each([...BY_ADDRESS, ...PAGES])('%s %s: 429 RATE_LIMITED after the limit, per client address', async (method, path) => {
    const url = fill(path, { username: 'nobody_here', cardId: randomUUID() });
    const remoteAddress = `10.9.${Math.floor(Math.random() * 250)}.${Math.floor(Math.random() * 250)}`;
    const send = (address = remoteAddress) =>
      t.app.inject({ method, url, remoteAddress: address, ...(PAYLOADS[method] ? { payload: PAYLOADS[method] } : {}) });
    for (let i = 0; i < LIMIT; i++) expect((await send()).statusCode).not.toBe(429);
    const limited = await send();
    expect(limited.statusCode).toBe(429);
    expect(limited.json()).toEqual(rateLimited);
    expect(limited.headers['retry-after']).toBeDefined();
    expect((await send('10.8.0.1')).statusCode, 'another address has its own budget').not.toBe(429);
  });

  it.each(BY_USER)('%s %s: 429 RATE_LIMITED after the limit, per user', async (method, path) => {
    const user = await signUp(t.app);
    // The self-test really sends its probes: to a closed loopback port, never to another host.
    const endpointUrl = path.endsWith('/verify-receiver') ? `http://127.0.0.1:9/${randomUUID()}` : undefined;
    const url = fill(path, { id: await endpointIdOf(user, endpointUrl), deliveryId: randomUUID() });
    const send = (as = user) => asUser(t.app, as, { method, url, ...(PAYLOADS[method] ? { payload: PAYLOADS[method] } : {}) });
    for (let i = 0; i < LIMIT; i++) expect((await send()).statusCode).not.toBe(429);
    const limited = await send();
    expect(limited.statusCode).toBe(429);
    expect(limited.json()).toEqual(rateLimited);
    expect((await send(await signUp(t.app))).statusCode, 'another user has their own budget').not.toBe(429);
  });
});
