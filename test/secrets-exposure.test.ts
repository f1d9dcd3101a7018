import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../src/app.ts';
import type { Database } from '../src/db/database.ts';
import type { FastifyInstance, InjectOptions } from 'fastify';
import { TEST_ENV, testConfig } from './helpers/app.ts';
import { allTextValues } from './helpers/db-scan.ts';
import { answer, startReceiver, type Receiver } from './helpers/receiver.ts';
import { createTestStore, type TestStore } from './helpers/store.ts';
import { waitFor } from './helpers/wait.ts';

/**
 * No plaintext secret anywhere it could leak from: passwords, bearer tokens and endpoint
 * signing secrets are looked for, after a whole session (register, login, cards, views, saves,
 * endpoint creation, rotation, deliveries), in every text and JSON column of every table, in
 * every log line (pino at trace level, the app's own logger configuration and redaction), and
 * in every response but the two that hand a secret out (create and rotate).
 */
describe('secrets never leak', () => {
  let store: TestStore;
  let db: Database;
  let app: FastifyInstance;
  let receiver: Receiver;
  const logLines: string[] = [];
  const responses: Array<{ request: string; status: number; body: string; headers: string }> = [];

  // What must not appear anywhere it is not handed out.
  const passwords = ['alice-Secret-Passw0rd', 'bob-Other-Passw0rd!', 'wrong-Guess-Passw0rd'];
  const tokens: string[] = [];
  const secrets: string[] = [];

  async function call(options: InjectOptions & { url: string; method: string }) {
    const res = await app.inject(options);
    responses.push({
      request: `${options.method} ${options.url}`,
      status: res.statusCode,
      body: res.body,
      headers: JSON.stringify(res.headers),
    });
    return res;
  }

  beforeAll(async () => {
    store = await createTestStore();
    db = await store.open();
    await db.migrate();
    receiver = await startReceiver();
    const config = testConfig(store, { LOG_LEVEL: 'trace', WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'true' });
    app = await buildApp({ config, db, logStream: { write: (line: string) => void logLines.push(line) } });
    await app.ready();

    // Accounts: register, log in by username and by email, a wrong password.
    const register = async (username: string, password: string) => {
      const res = await call({ method: 'POST', url: '/auth/register', payload: { email: `${username}@example.com`, username, password } });
      expect(res.statusCode).toBe(201);
      tokens.push(res.json().token);
      return { authorization: `Bearer ${res.json().token as string}` };
    };
    const alice = await register('alice', passwords[0]!);
    const bob = await register('bob', passwords[1]!);
    for (const login of ['alice', 'alice@example.com']) {
      const res = await call({ method: 'POST', url: '/auth/login', payload: { login, password: passwords[0] } });
      expect(res.statusCode).toBe(200);
      tokens.push(res.json().token);
    }
    expect((await call({ method: 'POST', url: '/auth/login', payload: { login: 'alice', password: passwords[2] } })).statusCode).toBe(401);
    expect((await call({ method: 'GET', url: '/api/cards', headers: { authorization: `Bearer ${tokens[0]}x` } })).statusCode).toBe(401);

    // An endpoint (its secret), deliveries of every kind, a rotation (a second secret), more deliveries.
    let failFirst = true;
    receiver.handle((request, res) => {
      if (failFirst) {
        failFirst = false;
        // Echoes what it got, so the stored response body holds the request headers.
        return answer(500, JSON.stringify(request.headers))(request, res);
      }
      return answer(200, 'ok')(request, res);
    });
    const created = await call({
      method: 'POST',
      url: '/api/webhooks',
      headers: alice,
      payload: { url: `${receiver.origin}/hook`, events: ['card.viewed', 'contact.saved'] },
    });
    expect(created.statusCode).toBe(201);
    const endpointId: string = created.json().id;
    secrets.push(created.json().secret);
    expect(
      (
        await call({
          method: 'PATCH',
          url: `/api/webhooks/${endpointId}`,
          headers: alice,
          payload: { events: ['card.viewed', 'contact.saved'] },
        })
      ).statusCode,
    ).toBe(200);

    const card = await call({ method: 'POST', url: '/api/cards', headers: alice, payload: { title: 'Alice' } });
    const cardId: string = card.json().id;
    expect((await call({ method: 'GET', url: `/api/u/alice/card/${cardId}?source=qr`, headers: bob })).statusCode).toBe(200);
    expect((await call({ method: 'POST', url: `/api/cards/${cardId}/save`, headers: bob })).statusCode).toBe(201);
    const test = await call({ method: 'POST', url: `/api/webhooks/${endpointId}/test`, headers: alice });
    expect(test.statusCode).toBe(202);

    const rotated = await call({
      method: 'PATCH',
      url: `/api/webhooks/${endpointId}/rotate-secret`,
      headers: alice,
      payload: { gracePeriodSeconds: 3600 },
    });
    expect(rotated.statusCode).toBe(200);
    secrets.push(rotated.json().secret);
    const extended = await call({
      method: 'POST',
      url: `/api/webhooks/${endpointId}/extend-previous-secret`,
      headers: alice,
      payload: { hours: 2 },
    });
    expect(extended.statusCode).toBe(200);
    expect((await call({ method: 'GET', url: '/api/u/alice' })).statusCode).toBe(200);
    await waitFor(() => receiver.requests.length >= 5, { what: 'five deliveries (one retried)' });
    await waitFor(async () => (await db.prisma.webhookDelivery.count({ where: { status: 'pending' } })) === 0, {
      what: 'all deliveries to settle',
    });
    const redeliver = await call({
      method: 'POST',
      url: `/api/webhooks/${endpointId}/deliveries/${test.json().deliveryId}/redeliver`,
      headers: alice,
    });
    expect(redeliver.statusCode).toBe(202);
    await waitFor(() => receiver.requests.length >= 6, { what: 'the redelivery' });

    // Coalesced views keep bytes of their own: on the log row once sent, in the queue while open.
    const coalescedView = async (coalesceSeconds: number) => {
      const patched = await call({ method: 'PATCH', url: `/api/webhooks/${endpointId}`, headers: alice, payload: { coalesceSeconds } });
      expect(patched.statusCode).toBe(200);
      expect((await call({ method: 'GET', url: `/api/u/alice/card/${cardId}`, headers: bob })).statusCode).toBe(200);
    };
    await coalescedView(1);
    await waitFor(async () => (await db.prisma.webhookDelivery.count({ where: { status: 'pending' } })) === 0, {
      what: 'the coalesced delivery to be sent',
    });
    await coalescedView(3600);

    // Every read route, as the owner.
    const deliveries = await call({ method: 'GET', url: `/api/webhooks/${endpointId}/deliveries?limit=100`, headers: alice });
    for (const { id } of deliveries.json().data as Array<{ id: string }>) {
      await call({ method: 'GET', url: `/api/webhooks/${endpointId}/deliveries/${id}`, headers: alice });
    }
    for (const url of [
      '/api/webhooks',
      `/api/webhooks/${endpointId}`,
      '/api/webhooks/event-types',
      '/api/cards',
      '/metrics',
      '/health',
      '/docs/json',
    ]) {
      expect((await call({ method: 'GET', url, headers: alice })).statusCode).toBe(200);
    }
  });

  afterAll(async () => {
    await app?.close();
    await db?.close();
    await store?.drop();
    await receiver?.close();
  });

  /** Each secret as written, and the key bytes of endpoint secrets without their `whsec_` prefix. */
  const needles = () => [
    ...passwords.map((value) => ({ kind: 'password', value })),
    ...tokens.map((value) => ({ kind: 'token', value })),
    ...secrets.flatMap((value) => [
      { kind: 'endpoint secret', value },
      { kind: 'endpoint secret key', value: value.slice('whsec_'.length) },
    ]),
    { kind: 'JWT_SECRET', value: TEST_ENV.JWT_SECRET! },
    { kind: 'WEBHOOK_ENCRYPTION_KEY', value: TEST_ENV.WEBHOOK_ENCRYPTION_KEY! },
  ];

  it('ran the whole session', () => {
    expect(tokens).toHaveLength(4);
    expect(secrets).toHaveLength(2);
    // Alice's tokens may coincide (same claims within one second); Bob's differs.
    expect(new Set(tokens).size).toBeGreaterThanOrEqual(2);
  });

  it('no text or JSON column of any table holds a password, token or secret', async () => {
    const values = await allTextValues(db);
    // The scan reached the columns where a leak would be most likely.
    const scanned = new Set(values.map((v) => `${v.table}.${v.column}`));
    for (const column of [
      'users.password_hash',
      'webhook_endpoints.secret_encrypted',
      'webhook_endpoints.previous_secret_encrypted',
      'webhook_events.body',
      'webhook_queue.coalesced_payload',
      'webhook_delivery_log.body',
      'webhook_delivery_log.response_body',
      'webhook_earlier_attempts.response_body',
    ]) {
      expect(scanned, column).toContain(column);
    }
    for (const { kind, value } of needles()) {
      const found = values.filter((v) => v.value.includes(value)).map((v) => `${v.table}.${v.column}`);
      expect(found, `${kind} stored in plaintext`).toEqual([]);
    }
  });

  it('no log line holds a password, token or secret, at trace level', () => {
    const text = logLines.join('');
    // The capture works and saw the session's requests, those carrying passwords and tokens included.
    expect(logLines.length).toBeGreaterThan(50);
    expect(text).toContain('incoming request');
    expect(text).toContain('"url":"/auth/login"');
    expect(text).toContain('"url":"/api/webhooks"');
    for (const { kind, value } of needles()) {
      expect(text.includes(value), `${kind} in the logs`).toBe(false);
    }
  });

  it('the logger redacts headers, passwords, secrets and tokens in whatever a log call is given', () => {
    const from = logLines.length;
    const [password] = passwords;
    const [token] = tokens;
    const [secret] = secrets;
    const authorization = `Bearer ${token}`;
    app.log.info({ headers: { authorization } }, 'redaction probe');
    app.log.info({ request: { headers: { authorization } } }, 'redaction probe');
    app.log.info({ password, secret, token }, 'redaction probe');
    app.log.info({ user: { password }, endpoint: { secret }, session: { token } }, 'redaction probe');
    app.log.info({ body: { user: { password }, endpoint: { secret }, session: { token } } }, 'redaction probe');
    const probes = logLines.slice(from);
    expect(probes).toHaveLength(5);
    for (const line of probes) expect(line).toContain('[Redacted]');
    for (const { kind, value } of needles()) expect(probes.join('').includes(value), `${kind} in the logs`).toBe(false);
  });

  it('only create and rotate answer with a secret; only register and login with a token; nothing with a password', async () => {
    const endpoint = await db.prisma.webhookEndpoint.findFirstOrThrow();
    const sealed = [endpoint.secretEncrypted, endpoint.previousSecretEncrypted!];
    const hashes = (await db.prisma.user.findMany()).map((u) => u.passwordHash);
    const holding = (value: string) => responses.filter((r) => r.body.includes(value) || r.headers.includes(value)).map((r) => r.request);

    expect(holding(secrets[0]!)).toEqual(['POST /api/webhooks']);
    expect(holding(secrets[1]!)).toEqual([expect.stringMatching(/^PATCH \/api\/webhooks\/[^/]+\/rotate-secret$/)]);
    expect(holding(secrets[0]!.slice('whsec_'.length))).toEqual(['POST /api/webhooks']);
    // (Two logins within one second get the same token.)
    for (const [i, token] of tokens.entries()) {
      expect(holding(token).length, `token ${i}`).toBeGreaterThan(0);
      expect(
        holding(token).filter((request) => !/^POST \/auth\/(register|login)$/.test(request)),
        `token ${i}`,
      ).toEqual([]);
    }
    for (const value of [...passwords, ...sealed, ...hashes, TEST_ENV.JWT_SECRET!, TEST_ENV.WEBHOOK_ENCRYPTION_KEY!]) {
      expect(holding(value)).toEqual([]);
    }
    expect(responses.length).toBeGreaterThan(20);
  });

  it('receivers get signatures, never the secret itself', () => {
    expect(receiver.requests.length).toBeGreaterThanOrEqual(6);
    const sent = JSON.stringify(receiver.requests);
    for (const secret of secrets) {
      expect(sent).not.toContain(secret);
      expect(sent).not.toContain(secret.slice('whsec_'.length));
    }
  });
});
