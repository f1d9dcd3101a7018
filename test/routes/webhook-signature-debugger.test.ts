import { createHash, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyWebhook } from '../../src/webhooks/signing.ts';
import { buildTestApp, type TestApp } from '../helpers/app.ts';
import { startReceiver, type ReceivedRequest, type Receiver } from '../helpers/receiver.ts';
import { signUp, uniqueUsername, type Session } from '../helpers/users.ts';
import { waitFor } from '../helpers/wait.ts';
import { createEndpoint } from '../helpers/webhook-api.ts';

/**
 * The signature debugger end to end: a worker delivering to real receivers on 127.0.0.1, and the
 * delivery and endpoint details read through the API. What the API says was signed is checked
 * against what the receiver actually got.
 */

// Schedule 200ms,400ms,800ms (4 attempts in all) and a 2 s timeout from the test helper; short sweep.
const ENV = { WEBHOOK_SWEEP_INTERVAL_MS: '200', WEBHOOK_MAX_ENDPOINTS_PER_USER: '100' };
const HOUR = 3_600_000;

const sha256 = (bytes: Buffer | string) => createHash('sha256').update(bytes).digest('hex');
/** The fingerprint as docs/api.md tells a user to compute it from the secret they hold. */
const fingerprintOf = (secret: string) => sha256(secret).slice(0, 8);
const codes = (hints: Array<{ code: string }>) => hints.map((h) => h.code);

interface Attempt {
  attemptNumber: number;
  responseCode: number | null;
  signature: {
    webhookId: string;
    timestamp: number;
    signedContent: string;
    bodyBytes: number;
    bodySha256: string;
    secretVersions: Array<{ version: string; fingerprint: string }>;
    receiverDate: string | null;
    clockSkewSeconds: number | null;
  } | null;
  hints: Array<{ code: string; message: string }>;
}
interface Detail {
  status: string;
  attempts: Attempt[];
}

describe('signature debugger', () => {
  let t: TestApp;
  let owner: Session;
  let stranger: Session;
  const receivers: Receiver[] = [];

  beforeAll(async () => {
    t = await buildTestApp({ env: ENV });
    owner = await signUp(t.app, uniqueUsername('sigowner'));
    stranger = await signUp(t.app, uniqueUsername('sigstranger'));
  });
  afterAll(async () => {
    await t?.close();
    await Promise.all(receivers.map((r) => r.close()));
  });

  async function receiver(handler: Parameters<typeof startReceiver>[0]): Promise<Receiver> {
    const r = await startReceiver(handler);
    receivers.push(r);
    return r;
  }

  async function call(method: 'GET' | 'POST' | 'PATCH', url: string, payload?: unknown, as: Session = owner) {
    return t.app.inject({ method, url, headers: as.auth, ...(payload !== undefined && { payload: payload as object }) });
  }

  async function sendTestEvent(endpointId: string): Promise<string> {
    const res = await call('POST', `/api/webhooks/${endpointId}/test`);
    expect(res.statusCode).toBe(202);
    return res.json().deliveryId;
  }

  /** The delivery detail through the API, once its status is `status`. */
  async function detailOnce(endpointId: string, deliveryId: string, status: 'success' | 'failed'): Promise<Detail> {
    return waitFor(
      async () => {
        const res = await call('GET', `/api/webhooks/${endpointId}/deliveries/${deliveryId}`);
        expect(res.statusCode).toBe(200);
        const body = res.json() as Detail;
        return body.status === status ? body : undefined;
      },
      { what: `delivery ${deliveryId} to be ${status}` },
    );
  }

  const endpointDetail = async (endpointId: string) => {
    const res = await call('GET', `/api/webhooks/${endpointId}`);
    expect(res.statusCode).toBe(200);
    return res.json();
  };

  /** What the receiver got, as the parts the API should report. */
  function partsOf(request: ReceivedRequest) {
    const raw = Buffer.from(request.body, 'utf8');
    const timestamp = String(request.headers['webhook-timestamp']);
    return {
      webhookId: String(request.headers['webhook-id']),
      timestamp: Number(timestamp),
      signedContent: `${String(request.headers['webhook-id'])}.${timestamp}.<body>`,
      bodyBytes: raw.length,
      bodySha256: sha256(raw),
    };
  }

  it('a receiver answering 401: each attempt shows what the receiver really got, and the usual causes', async () => {
    const AHEAD_SECONDS = 600;
    // A receiver whose clock runs ten minutes fast, and which refuses everything.
    const r = await receiver((_request, res) => {
      res.writeHead(401, { date: new Date(Date.now() + AHEAD_SECONDS * 1000).toUTCString() });
      res.end('invalid signature');
    });
    const endpoint = await createEndpoint(t.app, owner, `${r.origin}/refuses`);
    const deliveryId = await sendTestEvent(endpoint.id);
    const detail = await detailOnce(endpoint.id, deliveryId, 'failed');

    expect(detail.attempts).toHaveLength(4);
    expect(r.requests).toHaveLength(4);
    for (const [i, attempt] of detail.attempts.entries()) {
      const got = r.requests[i]!;
      // The request was correctly signed with the endpoint's secret: the refusal is the receiver's.
      expect(verifyWebhook({ secret: endpoint.secret, headers: got.headers, body: got.body })).toEqual({ ok: true });
      expect(attempt.signature, `attempt ${i + 1}`).toEqual({
        ...partsOf(got),
        secretVersions: [{ version: 'current', fingerprint: fingerprintOf(endpoint.secret) }],
        receiverDate: expect.any(String),
        clockSkewSeconds: expect.any(Number),
      });
      expect(attempt.signature!.webhookId).toBe(deliveryId);
      // At least the ten minutes, at most that plus the attempt timeout and a second of rounding.
      expect(attempt.signature!.clockSkewSeconds).toBeGreaterThanOrEqual(AHEAD_SECONDS);
      expect(attempt.signature!.clockSkewSeconds).toBeLessThanOrEqual(AHEAD_SECONDS + t.config.webhooks.timeoutMs / 1000 + 1);

      expect(codes(attempt.hints)).toEqual(['BODY_RESERIALISED', 'SECRET_NOT_DECODED', 'CLOCK_SKEW']);
      const [body, secret, clock] = attempt.hints.map((h) => h.message);
      expect(body).toContain(`We sent ${partsOf(got).bodyBytes} bytes with sha256 ${partsOf(got).bodySha256}`);
      expect(secret).toMatch(/whsec_/);
      expect(clock).toContain(`webhook-timestamp ${partsOf(got).timestamp}`);
      expect(clock).toMatch(/likely cause/);
    }
    // No secret, and no part of one, in the detail.
    const text = (await call('GET', `/api/webhooks/${endpoint.id}/deliveries/${deliveryId}`)).body;
    expect(text).not.toContain(endpoint.secret.slice('whsec_'.length, 'whsec_'.length + 12));
  });

  it('attempts that were not refused show what was signed and no hints; a 403 gets them', async () => {
    const answers = [500, 403, 200];
    let n = 0;
    const r = await receiver((_request, res) => {
      res.writeHead(answers[Math.min(n++, answers.length - 1)]!);
      res.end();
    });
    const endpoint = await createEndpoint(t.app, owner, `${r.origin}/flaky`);
    const deliveryId = await sendTestEvent(endpoint.id);
    const detail = await detailOnce(endpoint.id, deliveryId, 'success');
    expect(detail.attempts.map((a) => a.responseCode)).toEqual([500, 403, 200]);
    for (const [i, attempt] of detail.attempts.entries()) expect(attempt.signature).toMatchObject(partsOf(r.requests[i]!));
    expect(detail.attempts.map((a) => codes(a.hints))).toEqual([[], ['BODY_RESERIALISED', 'SECRET_NOT_DECODED', 'CLOCK_SKEW'], []]);
    // The same body every time; a new timestamp every attempt.
    expect(new Set(detail.attempts.map((a) => a.signature!.bodySha256)).size).toBe(1);
  });

  it('a receiver still on the previous secret after the overlap ended is labelled, and extending the overlap lets it accept again', async () => {
    let verifyWith = '';
    const r = await receiver((request, res) => {
      const ok = verifyWebhook({ secret: verifyWith, headers: request.headers, body: request.body }).ok;
      res.writeHead(ok ? 204 : 401);
      res.end(ok ? undefined : 'invalid signature');
    });
    const endpoint = await createEndpoint(t.app, owner, `${r.origin}/stays-on-old-secret`);
    verifyWith = endpoint.secret;
    const rotated = await call('PATCH', `/api/webhooks/${endpoint.id}/rotate-secret`, { gracePeriodSeconds: 3600 });
    expect(rotated.statusCode).toBe(200);
    const [previous, current] = [fingerprintOf(endpoint.secret), fingerprintOf(rotated.json().secret)];

    // During the overlap: signed with both secrets, accepted.
    const during = await detailOnce(endpoint.id, await sendTestEvent(endpoint.id), 'success');
    expect(during.attempts[0]!.signature!.secretVersions).toEqual([
      { version: 'current', fingerprint: current },
      { version: 'previous', fingerprint: previous },
    ]);
    expect((await endpointDetail(endpoint.id)).previousSecretOverlap).toMatchObject({
      fingerprint: previous,
      active: true,
      receiverOnPreviousSecret: false,
      message: null,
    });

    // The overlap ends (the hour passes: moved into the past rather than waited for).
    await t.db.sql.query(`UPDATE webhook_endpoints SET previous_secret_expires_at = now() - interval '1 second' WHERE id = $1::uuid`, [
      endpoint.id,
    ]);
    const refusedId = await sendTestEvent(endpoint.id);
    const refused = await detailOnce(endpoint.id, refusedId, 'failed');
    expect(refused.attempts).toHaveLength(4);
    for (const attempt of refused.attempts) {
      expect(attempt.responseCode).toBe(401);
      expect(attempt.signature!.secretVersions).toEqual([{ version: 'current', fingerprint: current }]);
      expect(codes(attempt.hints)).toEqual(['RECEIVER_ON_PREVIOUS_SECRET', 'BODY_RESERIALISED', 'SECRET_NOT_DECODED', 'CLOCK_SKEW']);
      expect(attempt.hints[0]!.message).toMatch(/^Receiver still on previous secret/);
      expect(attempt.hints[0]!.message).toContain(previous);
    }

    // The endpoint detail offers extending the overlap.
    const offered = await endpointDetail(endpoint.id);
    expect(offered.secretFingerprint).toBe(current);
    expect(offered.previousSecretOverlap).toMatchObject({
      fingerprint: previous,
      active: false,
      canExtend: true,
      receiverOnPreviousSecret: true,
      message: expect.stringContaining(`POST /api/webhooks/${endpoint.id}/extend-previous-secret`),
    });

    const extended = await call('POST', `/api/webhooks/${endpoint.id}/extend-previous-secret`, { hours: 2 });
    expect(extended.statusCode).toBe(200);
    expect(extended.json()).toEqual({ id: endpoint.id, previousSecretExpiresAt: expect.any(String), previousSecretFingerprint: previous });
    expect(Date.parse(extended.json().previousSecretExpiresAt)).toBeGreaterThan(Date.now() + HOUR);

    // Sent again: both signatures again, and the receiver on the old secret accepts.
    const before = r.requests.length;
    expect((await call('POST', `/api/webhooks/${endpoint.id}/deliveries/${refusedId}/redeliver`)).statusCode).toBe(202);
    const accepted = await detailOnce(endpoint.id, refusedId, 'success');
    const got = r.requests.slice(before);
    expect(got).toHaveLength(1);
    expect(String(got[0]!.headers['webhook-signature']).split(' ')).toHaveLength(2);
    expect(verifyWebhook({ secret: endpoint.secret, headers: got[0]!.headers, body: got[0]!.body })).toEqual({ ok: true });
    expect(verifyWebhook({ secret: rotated.json().secret, headers: got[0]!.headers, body: got[0]!.body })).toEqual({ ok: true });
    const last = accepted.attempts.at(-1)!;
    expect(last).toMatchObject({ attemptNumber: 5, responseCode: 204, hints: [] });
    expect(last.signature!.secretVersions.map((v) => v.fingerprint)).toEqual([current, previous]);
    expect((await endpointDetail(endpoint.id)).previousSecretOverlap).toMatchObject({
      active: true,
      receiverOnPreviousSecret: false,
      message: null,
    });
  });

  it('a receiver that never accepted is not labelled, whatever the rotation', async () => {
    const r = await receiver((_request, res) => {
      res.writeHead(401);
      res.end();
    });
    const endpoint = await createEndpoint(t.app, owner, `${r.origin}/never`);
    expect((await call('PATCH', `/api/webhooks/${endpoint.id}/rotate-secret`, { gracePeriodSeconds: 3600 })).statusCode).toBe(200);
    const during = await detailOnce(endpoint.id, await sendTestEvent(endpoint.id), 'failed');
    await t.db.sql.query(`UPDATE webhook_endpoints SET previous_secret_expires_at = now() - interval '1 second' WHERE id = $1::uuid`, [
      endpoint.id,
    ]);
    const after = await detailOnce(endpoint.id, await sendTestEvent(endpoint.id), 'failed');
    for (const attempt of [...during.attempts, ...after.attempts]) {
      expect(codes(attempt.hints)).toEqual(['BODY_RESERIALISED', 'SECRET_NOT_DECODED', 'CLOCK_SKEW']);
    }
    expect(after.attempts[0]!.signature!.secretVersions).toHaveLength(1);
    expect((await endpointDetail(endpoint.id)).previousSecretOverlap).toMatchObject({
      canExtend: true,
      receiverOnPreviousSecret: false,
      message: null,
    });
  });

  describe('POST /api/webhooks/:id/extend-previous-secret', () => {
    const expiryOf = async (id: string) => (await t.db.prisma.webhookEndpoint.findUniqueOrThrow({ where: { id } })).previousSecretExpiresAt;
    const extend = (id: string, payload?: unknown, as: Session = owner) =>
      call('POST', `/api/webhooks/${id}/extend-previous-secret`, payload, as);
    const expectError = (res: Awaited<ReturnType<typeof extend>>, status: number, code: string) => {
      expect(res.statusCode, res.body).toBe(status);
      expect(res.json().error).toMatchObject({ code, message: expect.any(String) });
    };
    let rotatedId: string;

    beforeAll(async () => {
      rotatedId = (await createEndpoint(t.app, owner, `http://127.0.0.1:9/${randomUUID()}`)).id;
      expect((await call('PATCH', `/api/webhooks/${rotatedId}/rotate-secret`, { gracePeriodSeconds: 3600 })).statusCode).toBe(200);
    });

    it('extends a running overlap to the later time', async () => {
      const res = await extend(rotatedId, { hours: 5 });
      expect(res.statusCode).toBe(200);
      const until = Date.parse(res.json().previousSecretExpiresAt);
      expect(until).toBeGreaterThan(Date.now() + 4 * HOUR);
      expect((await expiryOf(rotatedId))!.getTime()).toBe(until);
    });

    it.each([
      ['no hours', {}],
      ['0 hours', { hours: 0 }],
      ['169 hours', { hours: 169 }],
      ['a fraction', { hours: 1.5 }],
      ['a string', { hours: '24' }],
      ['null', { hours: null }],
      ['an unknown field', { hours: 24, days: 1 }],
      ['an array', [24]],
    ])('400 VALIDATION_ERROR for %s, and nothing changes', async (_name, payload) => {
      const before = await expiryOf(rotatedId);
      expectError(await extend(rotatedId, payload), 400, 'VALIDATION_ERROR');
      expect(await expiryOf(rotatedId)).toEqual(before);
    });

    it('400 VALIDATION_ERROR without a body', async () => {
      expectError(
        await t.app.inject({ method: 'POST', url: `/api/webhooks/${rotatedId}/extend-previous-secret`, headers: owner.auth }),
        400,
        'VALIDATION_ERROR',
      );
    });

    it("404 for another user's endpoint, an unknown one and a bad id; 401 without a token", async () => {
      const before = await expiryOf(rotatedId);
      expectError(await extend(rotatedId, { hours: 24 }, stranger), 404, 'NOT_FOUND');
      expectError(await extend(randomUUID(), { hours: 24 }), 404, 'NOT_FOUND');
      expectError(await extend('not-a-uuid', { hours: 24 }), 404, 'NOT_FOUND');
      expect(await expiryOf(rotatedId)).toEqual(before);
      const anonymous = await t.app.inject({
        method: 'POST',
        url: `/api/webhooks/${rotatedId}/extend-previous-secret`,
        payload: { hours: 24 },
      });
      expect(anonymous.statusCode).toBe(401);
    });

    it('409 NO_PREVIOUS_SECRET when none is kept: never rotated, rotated without a grace period, or forgotten', async () => {
      const never = (await createEndpoint(t.app, owner, `http://127.0.0.1:9/${randomUUID()}`)).id;
      expectError(await extend(never, { hours: 24 }), 409, 'NO_PREVIOUS_SECRET');

      const revoked = (await createEndpoint(t.app, owner, `http://127.0.0.1:9/${randomUUID()}`)).id;
      expect((await call('PATCH', `/api/webhooks/${revoked}/rotate-secret`, { gracePeriodSeconds: 0 })).statusCode).toBe(200);
      expectError(await extend(revoked, { hours: 24 }), 409, 'NO_PREVIOUS_SECRET');

      // Stopped signing 8 days ago: past the 7 days it is kept, even if the retention job has not run yet.
      const old = (await createEndpoint(t.app, owner, `http://127.0.0.1:9/${randomUUID()}`)).id;
      expect((await call('PATCH', `/api/webhooks/${old}/rotate-secret`, { gracePeriodSeconds: 60 })).statusCode).toBe(200);
      await t.db.sql.query(`UPDATE webhook_endpoints SET previous_secret_expires_at = now() - interval '8 days' WHERE id = $1::uuid`, [
        old,
      ]);
      expectError(await extend(old, { hours: 24 }), 409, 'NO_PREVIOUS_SECRET');
      expect((await endpointDetail(old)).previousSecretOverlap).toMatchObject({ canExtend: false, active: false });
    });
  });
});
