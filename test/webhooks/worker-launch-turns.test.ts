import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateEndpointSecret, SecretBox } from '../../src/webhooks/secrets.ts';
import { WebhookSender, type WebhookRequest } from '../../src/webhooks/delivery/sender.ts';
import { LAUNCHES_PER_TURN } from '../../src/webhooks/delivery/delivery-worker.ts';
import type { WorkerLogger } from '../../src/webhooks/delivery/worker-logger.ts';
import { fanOutEvent, openQueueStore, standaloneWorker, type QueueStore } from '../helpers/queue-store.ts';
import { answer, startReceiver, type Receiver } from '../helpers/receiver.ts';
import { waitFor } from '../helpers/wait.ts';

const quiet: WorkerLogger = { error: () => {}, warn: () => {}, info: () => {}, debug: () => {} };
const ROWS = 3 * LAUNCHES_PER_TURN;

describe('delivery worker: starting what a claim took', () => {
  let qs: QueueStore;
  let receiver: Receiver;
  const box = new SecretBox(Buffer.alloc(32, 3));
  beforeAll(async () => {
    qs = await openQueueStore('launchturns');
    receiver = await startReceiver(answer(200));
  });
  afterAll(async () => {
    await qs?.close();
    await receiver?.close();
  });

  it('starts a few attempts per turn of the event loop, so I/O waiting meanwhile is served between them', async () => {
    await qs.db.prisma.webhookEndpoint.create({
      data: {
        userId: qs.userId,
        url: `${receiver.origin}/turns`,
        secretEncrypted: box.seal(generateEndpointSecret()),
        events: ['card.viewed'],
      },
    });
    for (let i = 0; i < ROWS; i++) {
      await qs.queue.insertForSubscribers({
        ...fanOutEvent('card.viewed', { cardId: null, viewer: null, source: 'link' }),
        userId: qs.userId,
        notify: false,
      });
    }

    // Counts turns of the event loop: one step per check phase, as the worker's starts run.
    let turn = 0;
    let ticking = true;
    const tick = () => {
      turn++;
      if (ticking) setImmediate(tick);
    };
    setImmediate(tick);
    const startedInTurn = new Map<number, number>();
    const real = new WebhookSender({ timeoutMs: 5_000, allowPrivateNetworks: true, userAgent: 'test' });
    const sender = {
      send(request: WebhookRequest) {
        startedInTurn.set(turn, (startedInTurn.get(turn) ?? 0) + 1);
        return real.send(request);
      },
      close: () => real.close(),
    };
    // Room for every row at once: one claim takes them all, and nothing but the turns holds them back.
    const worker = standaloneWorker(qs.queue, quiet, box, { sender, maxInFlight: ROWS, maxInFlightPerEndpoint: ROWS });
    worker.start();
    try {
      await waitFor(() => receiver.requests.length >= ROWS, { what: 'every row delivered' });
    } finally {
      ticking = false;
      await worker.stop();
    }

    expect([...startedInTurn.values()].reduce((a, b) => a + b, 0)).toBe(ROWS);
    expect(Math.max(...startedInTurn.values())).toBeLessThanOrEqual(LAUNCHES_PER_TURN);
  });
});
