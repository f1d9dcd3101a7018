import type { ServerResponse } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { DeliveryQueue } from '../../src/webhooks/queue/delivery-queue.ts';
import { PACE_WINDOW_MS } from '../../src/webhooks/delivery/endpoint-pace.ts';
import { CLAIM_AHEAD, DEFAULT_MAX_IN_FLIGHT_PER_ENDPOINT } from '../../src/webhooks/delivery/worker-options.ts';
import { buildTestApp, type TestApp } from '../helpers/app.ts';
import { fanOutEvent } from '../helpers/queue-store.ts';
import { startReceiver, type Receiver } from '../helpers/receiver.ts';
import { signUp, uniqueUsername } from '../helpers/users.ts';
import { sleep, waitFor } from '../helpers/wait.ts';
import { createEndpoint, deliveriesOf } from '../helpers/webhook-api.ts';

const SHARE = CLAIM_AHEAD * DEFAULT_MAX_IN_FLIGHT_PER_ENDPOINT;

/** Rows written claimed at dispatch time (the in-process worker's fast path). */
describe('delivery engine: dispatches claimed for the in-process worker', () => {
  let t: TestApp | undefined;
  let receiver: Receiver | undefined;
  afterEach(async () => {
    await t?.close();
    await receiver?.close();
    t = undefined;
    receiver = undefined;
  });

  it("claims up to an endpoint's share at dispatch, leaves the rest due for any worker, and sends each once", async () => {
    const hanging: ServerResponse[] = [];
    receiver = await startReceiver((_request, res) => void hanging.push(res));
    t = await buildTestApp({ env: { WEBHOOK_TIMEOUT_MS: '30000' } });
    const owner = await signUp(t.app, uniqueUsername('busy'));
    const { id: endpointId } = await createEndpoint(t.app, owner, `${receiver.origin}/busy`, ['card.viewed']);

    const events = SHARE + 6;
    for (let i = 0; i < events; i++) {
      await t.app.webhooks.dispatch(owner.id, 'card.viewed', { userId: owner.id, cardId: null, viewer: null, source: 'link' });
    }
    await waitFor(() => hanging.length === DEFAULT_MAX_IN_FLIGHT_PER_ENDPOINT, { what: 'the per-endpoint slots to fill' });

    const rows = await t.db.prisma.webhookDelivery.findMany({ where: { endpointId } });
    const claimed = rows.filter((r) => r.claimToken !== null);
    const unclaimed = rows.filter((r) => r.claimToken === null);
    expect(rows).toHaveLength(events);
    expect(claimed).toHaveLength(SHARE);
    // Claimed rows come due again only when their lease runs out; the rest are due now.
    expect(claimed.every((r) => r.nextRetryAt!.getTime() > Date.now() + 30_000)).toBe(true);
    expect(unclaimed.every((r) => r.nextRetryAt!.getTime() <= Date.now())).toBe(true);
    // In the queue itself a row written claimed is due at its lease's end, so claims scanning the
    // due rows never read it while its lease holds.
    const queued = await t.db.sql.query<{ due_at: Date; lease_until: Date | null }>(
      'SELECT due_at, lease_until FROM webhook_queue WHERE endpoint_id = $1::uuid AND claim_token IS NOT NULL',
      [endpointId],
    );
    expect(queued).toHaveLength(SHARE);
    expect(queued.every((r) => r.lease_until !== null && r.due_at.getTime() === r.lease_until.getTime())).toBe(true);

    // Answering frees slots: everything is sent, each delivery exactly once.
    receiver.handle((_request, res) => res.end('ok'));
    for (const res of hanging.splice(0)) res.end('ok');
    const done = await waitFor(
      async () => {
        const all = await deliveriesOf(t!, endpointId);
        return all.every((d) => d.status === 'success') ? all : undefined;
      },
      { timeoutMs: 30_000, what: 'every delivery to succeed' },
    );
    expect(done.every((d) => d.attempts === 1)).toBe(true);
    const ids = receiver.requests.map((r) => r.headers['webhook-id']);
    expect(new Set(ids).size).toBe(events);
    expect(ids).toHaveLength(events);
  });

  // Only where the worker holds ahead by pace: not on the embedded store (src/webhooks/delivery/engine.ts).
  it.skipIf(!process.env.DATABASE_URL)(
    'claims past the share at dispatch for an endpoint whose recent pace sends them within seconds',
    async () => {
      const hanging: ServerResponse[] = [];
      receiver = await startReceiver();
      t = await buildTestApp({ env: { WEBHOOK_TIMEOUT_MS: '30000' } });
      const owner = await signUp(t.app, uniqueUsername('paced'));
      const { id: endpointId } = await createEndpoint(t.app, owner, `${receiver.origin}/paced`, ['card.viewed']);
      const view = () =>
        t!.app.webhooks.dispatch(owner.id, 'card.viewed', { userId: owner.id, cardId: null, viewer: null, source: 'link' });

      // A burst the receiver answers at once: its finishes fall within one pace window (the
      // first delivery's finish opens it), so the endpoint's pace is over 100 a second.
      await view();
      await waitFor(() => receiver!.requests.length === 1, { what: 'the first delivery' });
      await Promise.all(Array.from({ length: 100 }, view));
      await waitFor(() => receiver!.requests.length === 101, { what: 'the burst to be delivered' });
      await sleep(PACE_WINDOW_MS + 100);

      // Now it hangs: a burst of more than the share is written claimed for this worker, all of it.
      receiver.handle((_request, res) => void hanging.push(res));
      const events = SHARE + 40;
      for (let i = 0; i < events; i++) await view();
      await waitFor(() => hanging.length === DEFAULT_MAX_IN_FLIGHT_PER_ENDPOINT, { what: 'the per-endpoint slots to fill' });
      const pending = await t.db.prisma.webhookDelivery.findMany({ where: { endpointId, status: 'pending' } });
      expect(pending).toHaveLength(events);
      expect(pending.filter((r) => r.claimToken !== null)).toHaveLength(events);

      receiver.handle((_request, res) => res.end('ok'));
      for (const res of hanging.splice(0)) res.end('ok');
      await waitFor(async () => (await deliveriesOf(t!, endpointId)).every((d) => d.status === 'success'), {
        timeoutMs: 30_000,
        what: 'every delivery to succeed',
      });
      const ids = receiver.requests.map((r) => r.headers['webhook-id']);
      expect(new Set(ids).size).toBe(101 + events);
      expect(ids).toHaveLength(101 + events);
    },
  );

  it('hands rows claimed at dispatch back, due now, when the worker stopped before taking them', async () => {
    receiver = await startReceiver();
    t = await buildTestApp();
    const worker = t.app.webhooks.worker!;
    const owner = await signUp(t.app, uniqueUsername('late'));
    const { id: endpointId } = await createEndpoint(t.app, owner, `${receiver.origin}/late`, ['card.viewed']);
    const queue = new DeliveryQueue(t.db.sql);

    // The dispatch reserved its claim while the worker ran; the worker stops before the rows reach it.
    const claim = worker.reserveClaim();
    expect(claim).toBeDefined();
    const rows = await queue.insertForSubscribers({
      ...fanOutEvent('card.viewed', { cardId: null, viewer: null, source: 'link' }),
      userId: owner.id,
      notify: false,
      claim,
    });
    expect(rows[0]?.claimed?.claimToken).toBe(claim!.token);
    await worker.stop();
    expect(worker.reserveClaim()).toBeUndefined();
    worker.adopt(
      rows.flatMap((r) => (r.claimed ? [r.claimed] : [])),
      claim!,
    );

    const handedBack = await waitFor(
      async () => {
        const row = await t!.db.prisma.webhookDelivery.findFirst({ where: { endpointId } });
        return row && row.claimToken === null ? row : undefined;
      },
      { what: 'the row to be handed back' },
    );
    expect(handedBack.status).toBe('pending');
    expect(handedBack.nextRetryAt!.getTime()).toBeLessThanOrEqual(Date.now());
    expect(receiver.requests).toHaveLength(0);
  });
});
