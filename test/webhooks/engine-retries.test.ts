import { once } from 'node:events';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AUTO_DISABLE_AFTER_CONSECUTIVE_FAILURES } from '../../src/webhooks/delivery/retry-policy.ts';
import type { LookupFn } from '../../src/webhooks/dns-lookup.ts';
import { buildTestApp, type TestApp } from '../helpers/app.ts';
import { insertDelivery } from '../helpers/deliveries.ts';
import { answer, startReceiver, type Receiver } from '../helpers/receiver.ts';
import { signUp, uniqueUsername, type Session } from '../helpers/users.ts';
import { sleep, waitFor } from '../helpers/wait.ts';
import { buildWebhookTestApp, createEndpoint, PUBLIC_ADDRESS } from '../helpers/webhook-api.ts';

// Schedule 200ms,400ms,800ms (4 attempts in all) and a 2 s timeout from the test helper (long
// enough that a loaded machine does not turn a slow answer into a timeout); short sweep.
const ENV = { WEBHOOK_SWEEP_INTERVAL_MS: '200', WEBHOOK_MAX_ENDPOINTS_PER_USER: '100' };

describe('delivery engine: retries and failures', () => {
  let t: TestApp;
  let owner: Session;
  const receivers: Receiver[] = [];

  beforeAll(async () => {
    t = await buildTestApp({ env: ENV });
    owner = await signUp(t.app, uniqueUsername('owner'));
  });
  afterAll(async () => {
    await t?.close();
    await Promise.all(receivers.map((r) => r.close()));
  });

  async function receiver(...handlers: Parameters<Receiver['handle']>[0][]): Promise<Receiver> {
    // Answers with the handlers in turn; the last one repeats.
    let n = 0;
    const r = await startReceiver((request, res) => {
      const handler = handlers[Math.min(n++, handlers.length - 1)]!;
      handler(request, res);
    });
    receivers.push(r);
    return r;
  }

  async function sendTestEvent(endpointId: string): Promise<string> {
    const res = await t.app.inject({ method: 'POST', url: `/api/webhooks/${endpointId}/test`, headers: owner.auth });
    expect(res.statusCode).toBe(202);
    return res.json().deliveryId;
  }

  const delivery = (id: string) =>
    t.db.prisma.webhookDelivery.findUnique({ where: { id }, include: { attemptsLog: { orderBy: { attemptNumber: 'asc' } } } });
  const endpointRow = (id: string) => t.db.prisma.webhookEndpoint.findUniqueOrThrow({ where: { id } });

  async function settled(id: string, timeoutMs = 20_000) {
    return waitFor(
      async () => {
        const row = await delivery(id);
        return row && row.status !== 'pending' ? row : undefined;
      },
      { timeoutMs, what: `delivery ${id} to settle` },
    );
  }

  /** A pending delivery written behind the engine's back, due at `dueAt` (like a retry waiting in the table). */
  function insertPending(endpointId: string, dueAt: Date) {
    return insertDelivery(t.db, { endpointId, eventType: 'webhook.test', nextRetryAt: dueAt, data: { endpointId } });
  }

  it('retries 500, 500 then succeeds on attempt 3, logging every attempt with the same id and body', async () => {
    const r = await receiver(answer(500, 'first'), answer(500, 'second'), answer(200, 'thanks'));
    const endpoint = await createEndpoint(t.app, owner, `${r.origin}/flaky`);
    const id = await sendTestEvent(endpoint.id);

    const row = await settled(id);
    expect(row).toMatchObject({
      status: 'success',
      attempts: 3,
      responseCode: 200,
      nextRetryAt: null,
      claimToken: null,
      errorMessage: null,
    });
    expect(row.deliveredAt).toBeInstanceOf(Date);
    expect(row.attemptsLog.map((a) => [a.attemptNumber, a.responseCode, a.responseBody])).toEqual([
      [1, 500, 'first'],
      [2, 500, 'second'],
      [3, 200, 'thanks'],
    ]);
    expect(row.attemptsLog[0]?.error).toBe('HTTP 500');
    expect(r.requests).toHaveLength(3);
    expect(new Set(r.requests.map((q) => q.headers['webhook-id']))).toEqual(new Set([id]));
    expect(new Set(r.requests.map((q) => q.body)).size).toBe(1);
    // 200 ms then 400 ms, ±10 % jitter.
    const [a, b, c] = r.requests.map((q) => q.receivedAt) as [number, number, number];
    expect(b - a).toBeGreaterThanOrEqual(170);
    expect(c - b).toBeGreaterThanOrEqual(350);
    expect((await endpointRow(endpoint.id)).consecutiveFailures).toBe(0);
  });

  it('marks a delivery failed after 4 attempts when every attempt fails', async () => {
    const r = await receiver(answer(500, 'down'));
    const endpoint = await createEndpoint(t.app, owner, `${r.origin}/down`);
    const id = await sendTestEvent(endpoint.id);

    const row = await settled(id);
    expect(row).toMatchObject({ status: 'failed', attempts: 4, responseCode: 500, nextRetryAt: null, claimToken: null, deliveredAt: null });
    expect(row.attemptsLog.map((a) => a.attemptNumber)).toEqual([1, 2, 3, 4]);
    await sleep(300);
    expect(r.requests).toHaveLength(4);
    const ep = await endpointRow(endpoint.id);
    expect(ep).toMatchObject({ consecutiveFailures: 1, isActive: true });
  });

  it('disables the endpoint at once on 410 Gone and cancels its waiting deliveries', async () => {
    const r = await receiver(answer(410, 'gone'));
    const endpoint = await createEndpoint(t.app, owner, `${r.origin}/gone`);
    const waiting = await insertPending(endpoint.id, new Date(Date.now() + 60_000));
    const id = await sendTestEvent(endpoint.id);

    const row = await settled(id);
    expect(row).toMatchObject({ status: 'failed', attempts: 1, responseCode: 410 });
    const ep = await endpointRow(endpoint.id);
    expect(ep).toMatchObject({ isActive: false, disabledReason: 'endpoint returned 410 Gone' });
    expect(ep.disabledAt).toBeInstanceOf(Date);
    expect((await delivery(waiting.id))?.status).toBe('cancelled');
    await sleep(400);
    expect(r.requests).toHaveLength(1);
  });

  it('waits at least Retry-After on 429', async () => {
    const r = await receiver(answer(429, 'slow down', { 'retry-after': '1' }), answer(200));
    const endpoint = await createEndpoint(t.app, owner, `${r.origin}/limited`);
    const id = await sendTestEvent(endpoint.id);

    const row = await settled(id);
    expect(row).toMatchObject({ status: 'success', attempts: 2 });
    expect(row.attemptsLog[0]).toMatchObject({ responseCode: 429 });
    const [first, second] = r.requests;
    expect(second!.receivedAt - first!.receivedAt).toBeGreaterThanOrEqual(1000);
  });

  it('treats a redirect as a failure and never follows it', async () => {
    const target = await receiver(answer(200));
    const r = await receiver(answer(302, '', { location: `${target.origin}/elsewhere` }));
    const endpoint = await createEndpoint(t.app, owner, `${r.origin}/redirect`);
    const id = await sendTestEvent(endpoint.id);

    const row = await settled(id);
    expect(row).toMatchObject({ status: 'failed', attempts: 4, responseCode: 302 });
    expect(row.attemptsLog[0]?.error).toMatch(/redirect \(302\) not followed/);
    expect(r.requests).toHaveLength(4);
    expect(target.requests).toHaveLength(0);
  });

  it('records a timeout when the receiver hangs', async () => {
    const r = await receiver(() => {
      /* never answers */
    });
    const endpoint = await createEndpoint(t.app, owner, `${r.origin}/hang`);
    const id = await sendTestEvent(endpoint.id);

    const attempt = await waitFor(async () => (await delivery(id))?.attemptsLog[0], { what: 'first attempt' });
    expect(attempt).toMatchObject({ attemptNumber: 1, responseCode: null, error: 'timeout after 2000 ms' });
    expect(attempt.durationMs).toBeGreaterThanOrEqual(1900);
    expect(attempt.durationMs).toBeLessThan(15_000);
    const row = await delivery(id);
    expect(row?.status).toBe('pending');
    // Stop it before it uses its remaining attempts against this test's neighbours.
    await t.db.prisma.webhookEndpoint.delete({ where: { id: endpoint.id } });
  });

  it('retries when the connection is refused', async () => {
    const probe = createServer().listen(0, '127.0.0.1');
    await once(probe, 'listening');
    const port = (probe.address() as AddressInfo).port;
    probe.close();
    await once(probe, 'close');
    const endpoint = await createEndpoint(t.app, owner, `http://127.0.0.1:${port}/refused`);
    const id = await sendTestEvent(endpoint.id);

    const row = await settled(id);
    expect(row).toMatchObject({ status: 'failed', attempts: 4, responseCode: null, errorMessage: 'connection refused' });
    expect(row.attemptsLog.map((a) => a.error)).toEqual(Array(4).fill('connection refused'));
  });

  it('never sends deliveries of an endpoint deleted while they wait', async () => {
    const r = await receiver(answer(200));
    const endpoint = await createEndpoint(t.app, owner, `${r.origin}/deleted`);
    await insertPending(endpoint.id, new Date(Date.now() + 300));
    const res = await t.app.inject({ method: 'DELETE', url: `/api/webhooks/${endpoint.id}`, headers: owner.auth });
    expect(res.statusCode).toBe(204);
    await sleep(800);
    expect(r.requests).toHaveLength(0);
  });

  it('never sends deliveries of a disabled endpoint: a claim cancels them', async () => {
    const r = await receiver(answer(200));
    const endpoint = await createEndpoint(t.app, owner, `${r.origin}/disabled`);
    const waiting = await insertPending(endpoint.id, new Date(Date.now() + 200));
    // Disabled behind the API's back, so only the engine's own check stands in the way.
    await t.db.prisma.webhookEndpoint.update({ where: { id: endpoint.id }, data: { isActive: false } });
    const row = await settled(waiting.id);
    expect(row).toMatchObject({ status: 'cancelled', attempts: 0, nextRetryAt: null });
    expect(r.requests).toHaveLength(0);
  });

  it(`disables an endpoint after ${AUTO_DISABLE_AFTER_CONSECUTIVE_FAILURES} consecutive failed deliveries`, async () => {
    const r = await receiver(answer(500));
    const endpoint = await createEndpoint(t.app, owner, `${r.origin}/always-down`);
    const ids: string[] = [];
    for (let i = 0; i < AUTO_DISABLE_AFTER_CONSECUTIVE_FAILURES - 1; i++) ids.push(await sendTestEvent(endpoint.id));
    for (const id of ids) expect((await settled(id)).status).toBe('failed');
    expect(await endpointRow(endpoint.id)).toMatchObject({
      isActive: true,
      consecutiveFailures: AUTO_DISABLE_AFTER_CONSECUTIVE_FAILURES - 1,
    });

    const waiting = await insertPending(endpoint.id, new Date(Date.now() + 60_000));
    const last = await sendTestEvent(endpoint.id);
    expect((await settled(last)).status).toBe('failed');
    const ep = await endpointRow(endpoint.id);
    expect(ep).toMatchObject({
      isActive: false,
      consecutiveFailures: AUTO_DISABLE_AFTER_CONSECUTIVE_FAILURES,
      disabledReason: `${AUTO_DISABLE_AFTER_CONSECUTIVE_FAILURES} consecutive deliveries failed`,
    });
    expect((await delivery(waiting.id))?.status).toBe('cancelled');
  });

  it('resets the consecutive failure count on a success', async () => {
    const r = await receiver(answer(204));
    const endpoint = await createEndpoint(t.app, owner, `${r.origin}/recovers`);
    await t.db.prisma.webhookEndpoint.update({ where: { id: endpoint.id }, data: { consecutiveFailures: 14 } });
    const id = await sendTestEvent(endpoint.id);
    expect((await settled(id)).status).toBe('success');
    expect(await endpointRow(endpoint.id)).toMatchObject({ isActive: true, consecutiveFailures: 0 });
  });
});

describe('delivery engine: DNS rebinding', () => {
  it('refuses an attempt whose host now resolves to a private address, when private networks are not allowed', async () => {
    const r = await startReceiver();
    let answerWith = PUBLIC_ADDRESS;
    const lookup: LookupFn = async () => [{ address: answerWith, family: 4 }];
    const t = await buildWebhookTestApp({ env: { ...ENV, WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'false', WEBHOOK_WORKER: 'on' }, lookup });
    try {
      const owner = await signUp(t.app, uniqueUsername('rebind'));
      // Registration resolves to a public address…
      const endpoint = await createEndpoint(t.app, owner, `https://rebind.example.com:${r.port}/hook`);
      // …then the name rebinds to loopback, where the receiver listens.
      answerWith = '127.0.0.1';
      const res = await t.app.inject({ method: 'POST', url: `/api/webhooks/${endpoint.id}/test`, headers: owner.auth });
      expect(res.statusCode).toBe(202);
      const id: string = res.json().deliveryId;
      const attempt = await waitFor(() => t.db.prisma.webhookDeliveryAttempt.findFirst({ where: { deliveryId: id, attemptNumber: 1 } }));
      expect(attempt.error).toBe('destination not allowed: rebind.example.com resolves to a non-public address');
      expect(attempt.responseCode).toBeNull();
      expect(r.requests).toHaveLength(0);
    } finally {
      await t.close();
      await r.close();
    }
  });
});
