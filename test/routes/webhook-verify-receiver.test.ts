import { randomUUID } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VERIFY_RECEIVER_PER_MINUTE } from '../../src/webhooks/routes/actions.ts';
import { verifyWebhook } from '../../src/webhooks/signing.ts';
import { buildTestApp, type TestApp } from '../helpers/app.ts';
import { answer, startReceiver, type ReceivedRequest, type Receiver, type ReceiverHandler } from '../helpers/receiver.ts';
import { signUp, uniqueUsername, type Session } from '../helpers/users.ts';
import { createEndpoint } from '../helpers/webhook-api.ts';

const headersOf = (request: ReceivedRequest) => request.headers as Record<string, string>;

/** Verifies like a careful third-party receiver: the standardwebhooks package, 5-minute tolerance. */
const standardReceiver =
  (secret: () => string): ReceiverHandler =>
  (request, res) => {
    try {
      new Webhook(secret()).verify(request.body, headersOf(request));
      res.writeHead(204).end();
    } catch {
      res.writeHead(401).end('bad signature');
    }
  };

/** Checks the signature but accepts any timestamp. */
const signatureOnlyReceiver =
  (secret: () => string): ReceiverHandler =>
  (request, res) => {
    const check = verifyWebhook({ secret: secret(), headers: request.headers, body: request.body, toleranceSeconds: 10 ** 9 });
    res.writeHead(check.ok ? 200 : 400).end();
  };

describe('POST /api/webhooks/:id/verify-receiver', () => {
  let t: TestApp;
  let receiver: Receiver;
  let secrets: Map<string, string>;

  beforeAll(async () => {
    t = await buildTestApp();
    secrets = new Map();
    // One receiver, one path per behaviour; each path verifies with the secret of its endpoint.
    receiver = await startReceiver((request, res) => {
      const secret = () => secrets.get(request.path) ?? '';
      if (request.path.startsWith('/standard')) return standardReceiver(secret)(request, res);
      if (request.path.startsWith('/signature-only')) return signatureOnlyReceiver(secret)(request, res);
      if (request.path.startsWith('/rejects-all')) return answer(403, 'no')(request, res);
      return answer(200, 'ok')(request, res);
    });
  });
  afterAll(async () => {
    await t?.close();
    await receiver?.close();
  });

  /** A user of their own (the route's rate limit is per user) with one endpoint at `path`. */
  async function endpointAt(path: string): Promise<{ owner: Session; id: string }> {
    const owner = await signUp(t.app, uniqueUsername('verifier'));
    const { id, secret } = await createEndpoint(t.app, owner, `${receiver.origin}${path}`);
    secrets.set(path, secret);
    return { owner, id };
  }
  const verify = (id: string, who?: Session) =>
    t.app.inject({ method: 'POST', url: `/api/webhooks/${id}/verify-receiver`, headers: who?.auth ?? {} });

  it('ok for a receiver that verifies with standardwebhooks; the probes are signed webhook.test requests', async () => {
    const { owner, id } = await endpointAt('/standard');
    const res = await verify(id, owner);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({
      cases: [
        { name: 'valid', status: 204, accepted: true },
        { name: 'bad_signature', status: 401, accepted: false },
        { name: 'stale_timestamp', status: 401, accepted: false },
      ],
      verdict: 'ok',
      message: expect.stringContaining('rejects a wrong signature and a stale timestamp'),
    });

    const probes = receiver.at('/standard');
    expect(probes).toHaveLength(3);
    const ids = probes.map((p) => p.headers['webhook-id']);
    expect(new Set(ids).size).toBe(3);
    const now = Math.floor(Date.now() / 1000);
    const ages = probes.map((p) => now - Number(p.headers['webhook-timestamp'])).sort((a, b) => a - b);
    expect(ages[1]).toBeLessThan(120);
    expect(ages[2]).toBeGreaterThanOrEqual(600);
    for (const probe of probes) {
      expect(probe.headers).toMatchObject({ 'x-devcard-event': 'webhook.test', 'x-devcard-delivery': probe.headers['webhook-id'] });
      expect(JSON.parse(probe.body)).toMatchObject({ type: 'webhook.test', data: { endpointId: id } });
    }
    // A diagnostic, not deliveries: nothing is logged or retried.
    expect(await t.db.prisma.webhookDelivery.count({ where: { endpointId: id } })).toBe(0);
  });

  it('says plainly "your receiver does not check signatures" when the bad probes get 2xx', async () => {
    const { owner, id } = await endpointAt('/accepts-all');
    const body = (await verify(id, owner)).json();
    expect(body.cases).toEqual([
      { name: 'valid', status: 200, accepted: true },
      { name: 'bad_signature', status: 200, accepted: true },
      { name: 'stale_timestamp', status: 200, accepted: true },
    ]);
    expect(body.verdict).toBe('does_not_check_signatures');
    expect(body.message).toMatch(/^Your receiver does not check signatures/);
  });

  it('does_not_check_timestamps for a receiver that checks the signature only', async () => {
    const { owner, id } = await endpointAt('/signature-only');
    const body = (await verify(id, owner)).json();
    expect(body.cases).toEqual([
      { name: 'valid', status: 200, accepted: true },
      { name: 'bad_signature', status: 400, accepted: false },
      { name: 'stale_timestamp', status: 200, accepted: true },
    ]);
    expect(body.verdict).toBe('does_not_check_timestamps');
    expect(body.message).toMatch(/not timestamps/);
  });

  it('rejects_valid for a receiver that rejects everything', async () => {
    const { owner, id } = await endpointAt('/rejects-all');
    const body = (await verify(id, owner)).json();
    expect(body.cases.map((c: { status: number; accepted: boolean }) => [c.status, c.accepted])).toEqual([
      [403, false],
      [403, false],
      [403, false],
    ]);
    expect(body.verdict).toBe('rejects_valid');
    expect(body.message).toMatch(/HTTP 403/);
  });

  it('signs the valid probe with the previous secret too during a rotation grace period', async () => {
    const { owner, id } = await endpointAt('/standard-rotated');
    const rotated = await t.app.inject({ method: 'PATCH', url: `/api/webhooks/${id}/rotate-secret`, headers: owner.auth, payload: {} });
    expect(rotated.statusCode).toBe(200);
    // The receiver still holds the old secret.
    expect((await verify(id, owner)).json().verdict).toBe('ok');
  });

  it('unreachable, with the error, when nothing listens; a redirect is not followed', async () => {
    const gone = await startReceiver();
    const owner = await signUp(t.app, uniqueUsername('verifier'));
    const { id } = await createEndpoint(t.app, owner, `${gone.origin}/closed`);
    await gone.close();
    const body = (await verify(id, owner)).json();
    expect(body.verdict).toBe('unreachable');
    expect(body.cases[0]).toEqual({ name: 'valid', status: null, accepted: false, error: 'connection refused' });
    expect(body.message).toMatch(/connection refused/);

    const redirecting = await startReceiver(answer(302, '', { location: `${receiver.origin}/accepts-all` }));
    try {
      const other = await createEndpoint(t.app, owner, `${redirecting.origin}/moved`);
      const moved = (await verify(other.id, owner)).json();
      expect(moved.verdict).toBe('rejects_valid');
      expect(moved.cases[0]).toMatchObject({ status: 302, accepted: false, error: 'redirect (302) not followed' });
      expect(
        receiver.at('/accepts-all').filter((r) => r.headers['x-devcard-event'] === 'webhook.test' && r.body.includes(other.id)),
      ).toHaveLength(0);
    } finally {
      await redirecting.close();
    }
  });

  it("404 for another user's endpoint or an unknown id, 401 without a token, 409 when disabled; sends nothing", async () => {
    const { id } = await endpointAt('/accepts-all-stranger');
    const owner = await signUp(t.app, uniqueUsername('verifier'));
    for (const other of [id, randomUUID(), 'not-a-uuid']) {
      const res = await verify(other, owner);
      expect(res.statusCode).toBe(404);
      expect(res.json().error.code).toBe('NOT_FOUND');
    }
    expect((await verify(id)).statusCode).toBe(401);

    const disabled = await createEndpoint(t.app, owner, `${receiver.origin}/accepts-all-disabled`);
    await t.app.inject({ method: 'PATCH', url: `/api/webhooks/${disabled.id}`, headers: owner.auth, payload: { isActive: false } });
    const res = await verify(disabled.id, owner);
    expect(res.statusCode).toBe(409);
    expect(res.json().error.code).toBe('ENDPOINT_DISABLED');
    expect(receiver.at('/accepts-all-stranger')).toHaveLength(0);
    expect(receiver.at('/accepts-all-disabled')).toHaveLength(0);
  });

  it(`allows ${VERIFY_RECEIVER_PER_MINUTE} calls a minute per user, fewer than the other webhook routes`, async () => {
    expect(t.config.rateLimits.apiPerMinute).toBeGreaterThan(VERIFY_RECEIVER_PER_MINUTE);
    const owner = await signUp(t.app, uniqueUsername('verifier'));
    const unknown = randomUUID();
    for (let i = 0; i < VERIFY_RECEIVER_PER_MINUTE; i++) expect((await verify(unknown, owner)).statusCode).toBe(404);
    const limited = await verify(unknown, owner);
    expect(limited.statusCode).toBe(429);
    expect(limited.json().error.code).toBe('RATE_LIMITED');
    // Another user has a budget of their own.
    expect((await verify(unknown, await signUp(t.app, uniqueUsername('verifier')))).statusCode).toBe(404);
  });
});
