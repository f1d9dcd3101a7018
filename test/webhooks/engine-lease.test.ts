import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClaimOptions } from '../../src/webhooks/queue/types.ts';
import { generateEndpointSecret, SecretBox } from '../../src/webhooks/secrets.ts';
import { WebhookSender } from '../../src/webhooks/delivery/sender.ts';
import { CLAIM_AHEAD } from '../../src/webhooks/delivery/worker-options.ts';
import type { WorkerLogger } from '../../src/webhooks/delivery/worker-logger.ts';
import { fanOutEvent, openQueueStore, standaloneWorker, type QueueStore } from '../helpers/queue-store.ts';
import { answer, startReceiver, type Receiver } from '../helpers/receiver.ts';
import { sleep, waitFor } from '../helpers/wait.ts';

const quiet: WorkerLogger = { error: () => {}, warn: () => {}, info: () => {}, debug: () => {} };

describe('delivery worker: a row waiting longer than its lease', () => {
  let qs: QueueStore;
  let receiver: Receiver;
  const box = new SecretBox(Buffer.alloc(32, 9));
  beforeAll(async () => {
    qs = await openQueueStore('lease');
    // Each attempt takes a while, so the rows claimed behind it wait past their lease.
    receiver = await startReceiver((request, res) => setTimeout(() => answer(200)(request, res), 600));
  });
  afterAll(async () => {
    await qs?.close();
    await receiver?.close();
  });

  it('is never sent once another holder may have claimed it', async () => {
    const endpoint = await qs.db.prisma.webhookEndpoint.create({
      data: {
        userId: qs.userId,
        url: `${receiver.origin}/lease`,
        secretEncrypted: box.seal(generateEndpointSecret()),
        events: ['card.viewed'],
      },
    });
    // Attempted rather than delivered: on a slow machine an attempt can time out (a retry due in a
    // minute, so neither delivered nor claimable here), and that row is still the worker's alone.
    const attempted = () => qs.db.prisma.webhookDelivery.count({ where: { endpointId: endpoint.id, attempts: { gt: 0 } } });
    const rows = CLAIM_AHEAD;
    for (let i = 0; i < rows; i++) {
      await qs.queue.insertForSubscribers({
        ...fanOutEvent('card.viewed', { cardId: null, viewer: null, source: 'link' }),
        userId: qs.userId,
        notify: false,
      });
    }
    // One slot, so the worker claims all the rows and they queue behind one another in memory.
    const timeoutMs = 1000;
    const worker = standaloneWorker(qs.queue, quiet, box, {
      timeoutMs,
      leaseMs: 1500,
      // A retry (an attempt that timed out on a loaded machine) would not be a duplicate; keep it out of the window.
      retryScheduleMs: [60_000],
      maxInFlight: 1,
      maxInFlightPerEndpoint: 1,
      sender: new WebhookSender({ timeoutMs, allowPrivateNetworks: true, userAgent: 'test' }),
    });
    worker.start();

    // A second holder: claims whatever is due (an expired lease is), and never sends it.
    const takenAt = new Map<string, number>();
    const options: ClaimOptions = { limit: 100, leaseMs: 600_000, perEndpointLimit: 100, inFlightByEndpoint: new Map() };
    try {
      await waitFor(() => receiver.requests.length > 0, { what: 'the first attempt' });
      // Until every row is attempted by the worker or held here.
      await waitFor(
        async () => {
          const { deliveries } = await qs.queue.claimDueDeliveries(options);
          for (const d of deliveries) takenAt.set(d.id, Date.now());
          return (await attempted()) + takenAt.size >= rows;
        },
        { intervalMs: 50, what: 'every row to be attempted or taken over' },
      );
      // Anything the worker still sent now would show below.
      await sleep(1_000);
    } finally {
      await worker.stop();
    }

    const sentWhileTaken = receiver.requests.filter((r) => {
      const taken = takenAt.get(String(r.headers['webhook-id']));
      return taken !== undefined && r.receivedAt >= taken;
    });
    expect(sentWhileTaken).toEqual([]);
    const ids = receiver.requests.map((r) => String(r.headers['webhook-id']));
    expect(new Set(ids).size).toBe(ids.length);
    expect((await attempted()) + takenAt.size).toBe(rows);
  });
});
