import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { DeliveryWorker } from '../../src/webhooks/delivery/delivery-worker.ts';
import { DeliveryQueue } from '../../src/webhooks/queue/delivery-queue.ts';
import { SecretBox } from '../../src/webhooks/secrets.ts';
import { buildTestApp, type TestApp } from '../helpers/app.ts';
import { attemptsFrom, logFinished, type LoggedDelivery } from '../helpers/delivery-history.ts';
import { standaloneWorker } from '../helpers/queue-store.ts';
import { startReceiver, type Receiver } from '../helpers/receiver.ts';
import { asUser, signUp, type Session } from '../helpers/users.ts';
import { sleep, waitFor } from '../helpers/wait.ts';
import { buildWebhookTestApp, createEndpoint } from '../helpers/webhook-api.ts';

/**
 * After an outage, POST /api/webhooks/:id/recover re-sends the failed deliveries of the window to
 * a real receiver on 127.0.0.1: exactly those, each under its own webhook-id, oldest first; not
 * the successes, not another endpoint's, not those outside the window.
 */

const MINUTE = 60_000;
const minutesAgo = (minutes: number) => new Date(Date.now() - minutes * MINUTE);

interface Outage {
  /** The failed deliveries of the window, oldest first. */
  failed: LoggedDelivery[];
  /** What must not be sent: the successes of the window, failures before it, another endpoint's failures. */
  untouched: LoggedDelivery[];
  since: string;
}

/** An endpoint at `/hooks` whose receiver was down for the last two hours, and another of the same user at `/other`. */
async function arrangeOutage(t: TestApp, user: Session, receiver: Receiver): Promise<{ endpointId: string; outage: Outage }> {
  const { id: endpointId } = await createEndpoint(t.app, user, `${receiver.origin}/hooks`);
  const { id: otherId } = await createEndpoint(t.app, user, `${receiver.origin}/other`);
  const log = (id: string, minutes: number, status: 'success' | 'failed', attempts: number) =>
    logFinished(t.db, {
      endpointId: id,
      createdAt: minutesAgo(minutes),
      status,
      attempts: attemptsFrom(minutesAgo(minutes), attempts, status === 'success' ? 200 : 503),
    });
  const failed: LoggedDelivery[] = [];
  const untouched: LoggedDelivery[] = [await log(endpointId, 150, 'failed', 4), await log(otherId, 90, 'failed', 4)];
  // Every few minutes through the outage a failure, now and then a success.
  for (let minutes = 115; minutes > 0; minutes -= 5) {
    if (minutes % 25 === 0) untouched.push(await log(endpointId, minutes, 'success', 1));
    else failed.push(await log(endpointId, minutes, 'failed', 1 + (minutes % 4)));
  }
  return { endpointId, outage: { failed, untouched, since: minutesAgo(120).toISOString() } };
}

const webhookIds = (receiver: Receiver, path: string) => receiver.at(path).map((request) => request.headers['webhook-id']);

describe('recover re-sends the failed deliveries of the window (in-process worker)', () => {
  let t: TestApp;
  let receiver: Receiver;

  beforeAll(async () => {
    // No sweep to speak of: the recover's own hand-over must bring the rows to the worker.
    t = await buildTestApp({ env: { WEBHOOK_SWEEP_INTERVAL_MS: '3600000' } });
    receiver = await startReceiver();
  });
  afterAll(async () => {
    await t?.close();
    await receiver?.close();
  });

  it('sends each once, under its webhook-id, with its bytes, as one more attempt; nothing else', async () => {
    const user = await signUp(t.app);
    const { endpointId, outage } = await arrangeOutage(t, user, receiver);

    const snapshot = () =>
      t.db.prisma.webhookDelivery.findMany({
        where: { id: { in: outage.untouched.map((d) => d.id) } },
        select: { id: true, status: true, attempts: true },
        orderBy: { id: 'asc' },
      });
    const untouchedBefore = await snapshot();
    expect(untouchedBefore).toHaveLength(outage.untouched.length);

    const res = await asUser(t.app, user, { method: 'POST', url: `/api/webhooks/${endpointId}/recover`, payload: { since: outage.since } });
    expect(res.statusCode, res.body).toBe(202);
    expect(res.json()).toMatchObject({ requeued: outage.failed.length, skipped: 0 });

    await waitFor(() => receiver.at('/hooks').length >= outage.failed.length, { what: 'the recovered deliveries' });
    // Anything more would have come by now.
    await sleep(500);
    const requests = receiver.at('/hooks');
    expect(requests.map((request) => request.headers['webhook-id']).sort()).toEqual(outage.failed.map((d) => d.id).sort());
    for (const request of requests) {
      const delivery = outage.failed.find((d) => d.id === request.headers['webhook-id'])!;
      expect(request.body).toBe(delivery.body);
      expect(request.headers['x-devcard-delivery']).toBe(delivery.id);
    }
    expect(webhookIds(receiver, '/other')).toEqual([]);

    const rows = await waitFor(
      async () => {
        const found = await t.db.prisma.webhookDelivery.findMany({ where: { id: { in: outage.failed.map((d) => d.id) } } });
        return found.every((row) => row.status === 'success') ? found : null;
      },
      { what: 'the recovered deliveries to be logged' },
    );
    for (const row of rows) {
      const before = await t.db.prisma.webhookDeliveryAttempt.count({ where: { deliveryId: row.id, responseCode: 503 } });
      expect(row.attempts).toBe(before + 1);
    }
    expect(await snapshot()).toEqual(untouchedBefore);
  });
});

describe('recover sends oldest first, paced by the per-endpoint cap', () => {
  let t: TestApp;
  let receiver: Receiver;
  let worker: DeliveryWorker | undefined;

  beforeAll(async () => {
    t = await buildWebhookTestApp();
    receiver = await startReceiver();
  });
  afterEach(async () => worker?.stop());
  afterAll(async () => {
    await t?.close();
    await receiver?.close();
  });

  it('delivers in the order the deliveries were created, one at a time', async () => {
    const user = await signUp(t.app);
    const { endpointId, outage } = await arrangeOutage(t, user, receiver);
    const res = await asUser(t.app, user, { method: 'POST', url: `/api/webhooks/${endpointId}/recover`, payload: { since: outage.since } });
    expect(res.json()).toMatchObject({ requeued: outage.failed.length });

    // One attempt in flight per endpoint: the receiver sees them in the order they were started,
    // which is the order they came due from one claim to the next, and within a claim the order
    // of its rows (here, on a queue that held nothing before, the order they were queued in).
    let inFlight = 0;
    let mostInFlight = 0;
    receiver.handle((_request, response) => {
      mostInFlight = Math.max(mostInFlight, ++inFlight);
      setTimeout(() => {
        inFlight--;
        response.writeHead(200).end('ok');
      }, 5);
    });
    const quiet = { info() {}, warn() {}, error() {}, debug() {} };
    worker = standaloneWorker(new DeliveryQueue(t.db.sql), quiet, new SecretBox(t.config.webhookEncryptionKey), {
      maxInFlightPerEndpoint: 1,
    });
    worker.start();
    await waitFor(() => receiver.at('/hooks').length >= outage.failed.length, { what: 'the recovered deliveries' });
    expect(webhookIds(receiver, '/hooks')).toEqual(outage.failed.map((d) => d.id));
    expect(mostInFlight).toBe(1);
  });
});
