import type { InjectOptions } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { verifyWebhook } from '../../src/webhooks/signing.ts';
import { DEFAULT_MAX_IN_FLIGHT_PER_ENDPOINT } from '../../src/webhooks/delivery/worker-options.ts';
import { buildTestApp, type TestApp } from '../helpers/app.ts';
import { gatedReceiver, startReceiver, type ReceivedRequest } from '../helpers/receiver.ts';
import { signUp, uniqueUsername, type Session } from '../helpers/users.ts';
import { sleep, waitFor } from '../helpers/wait.ts';
import { createEndpoint } from '../helpers/webhook-api.ts';

/**
 * Contract §4: once a DELETE, a disable, or a change of url or secret has answered, no request
 * starts to the endpoint with its old configuration; attempts already on the wire may finish.
 * The receiver holds the first attempts (a slow receiver) while the worker holds more rows of
 * the endpoint, claimed ahead, waiting for those slots.
 */
const VIEWS = 40;
/**
 * A request started just before the answer can reach the receiver a moment after it; anything
 * started by a slot the held attempts free comes after the receiver lets them go, which the
 * test does only once the API has answered.
 */
const IN_TRANSIT_MS = 100;

function startedAfter(requests: readonly ReceivedRequest[], answeredAt: number): ReceivedRequest[] {
  return requests.filter((r) => r.receivedAt > answeredAt + IN_TRANSIT_MS);
}

describe('endpoint changes stop what the worker holds of the endpoint', { timeout: 60_000 }, () => {
  const cleanups: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => {});
  });

  /** An app with its worker, an endpoint on a gated receiver, and VIEWS views of which the first attempts are held. */
  async function busyEndpoint(prefix: string) {
    // A held attempt must not time out while the test works.
    const t: TestApp = await buildTestApp({ env: { WEBHOOK_TIMEOUT_MS: '20000' } });
    cleanups.push(() => t.close());
    const gate = await gatedReceiver();
    cleanups.push(() => gate.close());
    const owner: Session = await signUp(t.app, uniqueUsername(prefix));
    const endpoint = await createEndpoint(t.app, owner, `${gate.origin}/${prefix}`, ['card.viewed']);
    for (let i = 0; i < VIEWS; i++) {
      await t.app.webhooks.dispatch(owner.id, 'card.viewed', { userId: owner.id, cardId: null, viewer: null, source: 'link' });
    }
    await waitFor(() => gate.requests.length >= DEFAULT_MAX_IN_FLIGHT_PER_ENDPOINT, { what: 'the first attempts to be on the wire' });
    const change = async (options: InjectOptions) => {
      const res = await t.app.inject({ ...options, headers: owner.auth });
      return { res, answeredAt: Date.now() };
    };
    return { t, gate, owner, endpoint, change };
  }

  it('DELETE: no request starts after the 204, though rows were claimed ahead', async () => {
    const { gate, endpoint, change } = await busyEndpoint('deleted');
    const { res, answeredAt } = await change({ method: 'DELETE', url: `/api/webhooks/${endpoint.id}` });
    expect(res.statusCode).toBe(204);

    gate.open();
    // Time for the freed slots to start what the worker held, if it still would.
    await sleep(1_500);
    expect(startedAfter(gate.requests, answeredAt)).toEqual([]);
    expect(gate.requests).toHaveLength(DEFAULT_MAX_IN_FLIGHT_PER_ENDPOINT);
  });

  it('PATCH {isActive:false}: no request starts after the answer; the held attempts finish and are logged', async () => {
    const { t, gate, endpoint, change } = await busyEndpoint('paused');
    const { res, answeredAt } = await change({ method: 'PATCH', url: `/api/webhooks/${endpoint.id}`, payload: { isActive: false } });
    expect(res.statusCode).toBe(200);

    gate.open();
    await waitFor(async () => (await t.db.prisma.webhookDeliveryAttempt.count()) === DEFAULT_MAX_IN_FLIGHT_PER_ENDPOINT, {
      what: 'the attempts on the wire to be logged',
    });
    await sleep(1_000);
    expect(startedAfter(gate.requests, answeredAt)).toEqual([]);
    expect(gate.requests).toHaveLength(DEFAULT_MAX_IN_FLIGHT_PER_ENDPOINT);
    expect(await t.db.prisma.webhookDelivery.count({ where: { endpointId: endpoint.id, status: 'pending' } })).toBe(0);
  });

  it('PATCH url: the old receiver gets no request after the answer; the new one gets the rest, signed', async () => {
    const { t, gate, endpoint, change } = await busyEndpoint('moved');
    const next = await startReceiver();
    cleanups.push(() => next.close());
    const { res, answeredAt } = await change({
      method: 'PATCH',
      url: `/api/webhooks/${endpoint.id}`,
      payload: { url: `${next.origin}/moved` },
    });
    expect(res.statusCode).toBe(200);

    gate.open();
    await waitFor(
      async () => (await t.db.prisma.webhookDelivery.count({ where: { endpointId: endpoint.id, status: 'success' } })) === VIEWS,
      {
        what: 'every delivery to succeed',
      },
    );
    expect(startedAfter(gate.requests, answeredAt)).toEqual([]);
    expect(gate.requests).toHaveLength(DEFAULT_MAX_IN_FLIGHT_PER_ENDPOINT);
    expect(next.requests).toHaveLength(VIEWS - DEFAULT_MAX_IN_FLIGHT_PER_ENDPOINT);
    for (const request of next.requests) {
      expect(verifyWebhook({ secret: endpoint.secret, headers: request.headers, body: request.body })).toEqual({ ok: true });
    }
    const ids = new Set([...gate.requests, ...next.requests].map((r) => r.headers['webhook-id']));
    expect(ids.size).toBe(VIEWS);
  });

  it('secret rotation: every request started after the answer is signed with the new secret', async () => {
    const { t, gate, endpoint, change } = await busyEndpoint('rotated');
    const { res, answeredAt } = await change({
      method: 'PATCH',
      url: `/api/webhooks/${endpoint.id}/rotate-secret`,
      payload: { gracePeriodSeconds: 0 },
    });
    expect(res.statusCode).toBe(200);
    const { secret } = res.json() as { secret: string };

    gate.open();
    await waitFor(
      async () => (await t.db.prisma.webhookDelivery.count({ where: { endpointId: endpoint.id, status: 'success' } })) === VIEWS,
      {
        what: 'every delivery to succeed',
      },
    );
    const [before, after] = [
      gate.requests.slice(0, DEFAULT_MAX_IN_FLIGHT_PER_ENDPOINT),
      gate.requests.slice(DEFAULT_MAX_IN_FLIGHT_PER_ENDPOINT),
    ];
    expect(after).toHaveLength(VIEWS - DEFAULT_MAX_IN_FLIGHT_PER_ENDPOINT);
    expect(before.every((r) => r.receivedAt <= answeredAt + IN_TRANSIT_MS)).toBe(true);
    for (const request of before)
      expect(verifyWebhook({ secret: endpoint.secret, headers: request.headers, body: request.body })).toEqual({ ok: true });
    for (const request of after) {
      expect(verifyWebhook({ secret, headers: request.headers, body: request.body })).toEqual({ ok: true });
      expect(verifyWebhook({ secret: endpoint.secret, headers: request.headers, body: request.body })).toMatchObject({ ok: false });
    }
  });
});
