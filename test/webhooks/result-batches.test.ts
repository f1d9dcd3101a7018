import type { ServerResponse } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../src/db/database.ts';
import { COMPLETION_COALESCE_MS } from '../../src/webhooks/delivery/result-writer.ts';
import { DeliveryQueue } from '../../src/webhooks/queue/delivery-queue.ts';
import type { AttemptRecord } from '../../src/webhooks/queue/types.ts';
import { generateEndpointSecret, SecretBox } from '../../src/webhooks/secrets.ts';
import type { WorkerLogger } from '../../src/webhooks/delivery/worker-logger.ts';
import { fanOutEvent, standaloneWorker } from '../helpers/queue-store.ts';
import { startReceiver, type Receiver } from '../helpers/receiver.ts';
import { createTestStore, type TestStore } from '../helpers/store.ts';
import { waitFor } from '../helpers/wait.ts';

const silent: WorkerLogger = { error: () => {}, warn: () => {}, info: () => {}, debug: () => {} };

/**
 * A result write costs mostly per statement, so results that finish while one is running wait
 * for the next window instead of going out a few at a time, back to back (result-writer.ts).
 */
describe('delivery worker: result batches', () => {
  let store: TestStore;
  let db: Database;
  let receiver: Receiver;
  /** Held responses, answered one every 2 ms: attempts finish one by one, as under steady load. */
  const held: ServerResponse[] = [];
  const ticker = setInterval(() => held.shift()?.writeHead(200).end('ok'), 2);
  const box = new SecretBox(Buffer.alloc(32, 9));

  beforeAll(async () => {
    store = await createTestStore();
    db = await store.open();
    await db.migrate();
    receiver = await startReceiver((_request, res) => held.push(res));
  });
  afterAll(async () => {
    clearInterval(ticker);
    await db?.close();
    await store?.drop();
    await receiver?.close();
  });

  it('writes results that finish one by one in batches at least a window apart', async () => {
    const user = await db.prisma.user.create({
      data: { email: 'batches@example.com', username: 'batches', displayName: 'batches', passwordHash: 'x' },
    });
    for (let i = 0; i < 5; i++) {
      await db.prisma.webhookEndpoint.create({
        data: {
          userId: user.id,
          url: `${receiver.origin}/${i}`,
          secretEncrypted: box.seal(generateEndpointSecret()),
          events: ['card.viewed'],
        },
      });
    }
    const batches: { at: number; size: number }[] = [];
    const queue = new (class extends DeliveryQueue {
      override async completeAttempts(records: readonly AttemptRecord[]) {
        batches.push({ at: performance.now(), size: records.length });
        return super.completeAttempts(records);
      }
    })(db.sql);
    const views = 24;
    for (let i = 0; i < views; i++) {
      await queue.insertForSubscribers({
        ...fanOutEvent('card.viewed', { cardId: null, viewer: null, source: 'link' }),
        userId: user.id,
        notify: false,
      });
    }

    const worker = standaloneWorker(queue, silent, box);
    worker.start();
    try {
      const written = () => batches.reduce((sum, batch) => sum + batch.size, 0);
      await waitFor(() => written() === views * 5, { timeoutMs: 20_000, what: 'every result written' });
    } finally {
      await worker.stop();
    }

    // 120 answers, one every 2 ms or slower: several windows, each written once.
    expect(batches.length).toBeGreaterThan(2);
    for (let i = 1; i < batches.length; i++) {
      // setTimeout may fire up to a millisecond early by its rounding.
      expect(batches[i]!.at - batches[i - 1]!.at).toBeGreaterThanOrEqual(COMPLETION_COALESCE_MS - 1);
    }
    const logged = await db.sql.query<{ n: number }>(`SELECT count(*)::int AS n FROM webhook_delivery_log WHERE status = 'success'`);
    expect(logged[0]?.n).toBe(views * 5);
  });
});
