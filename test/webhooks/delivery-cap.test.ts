import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.ts';
import type { Database } from '../../src/db/database.ts';
import type { WebhookDeliveryStatus } from '../../src/generated/prisma/client.ts';
import type { DeliveryQueue } from '../../src/webhooks/queue/delivery-queue.ts';
import { SecretBox } from '../../src/webhooks/secrets.ts';
import { TEST_ENV } from '../helpers/app.ts';
import { insertAttempt, insertDelivery } from '../helpers/deliveries.ts';
import { openQueueStore, standaloneWorker, type QueueStore } from '../helpers/queue-store.ts';
import { waitFor } from '../helpers/wait.ts';

/**
 * WEBHOOK_MAX_DELIVERIES_PER_ENDPOINT: one user's endpoint cannot fill the disk with delivery
 * logs. The retention job deletes the oldest finished deliveries beyond the cap; pending ones stay.
 */
describe('per-endpoint delivery cap', () => {
  let db: Database;
  let queue: DeliveryQueue;
  let userId: string;

  let fixture: QueueStore | undefined;

  beforeAll(async () => {
    fixture = await openQueueStore('cap');
    ({ db, queue, userId } = fixture);
  });
  afterAll(async () => fixture?.close());
  beforeEach(async () => {
    await db.prisma.webhookEndpoint.deleteMany();
  });

  let urlCounter = 0;
  const endpoint = () =>
    db.prisma.webhookEndpoint.create({
      data: { userId, url: `https://example.com/${++urlCounter}`, secretEncrypted: 'sealed', events: ['card.viewed'] },
    });

  /** Deliveries one minute apart, oldest first, with the given statuses; each finished one has an attempt. */
  async function deliveries(endpointId: string, statuses: WebhookDeliveryStatus[]) {
    const ids: string[] = [];
    const start = Date.now() - statuses.length * 60_000;
    for (const [i, status] of statuses.entries()) {
      const createdAt = new Date(start + i * 60_000);
      const row = await insertDelivery(db, {
        endpointId,
        eventType: 'card.viewed',
        status,
        createdAt,
        // Pending rows wait far in the future, so a running worker leaves them alone.
        ...(status === 'pending' ? { nextRetryAt: new Date(Date.now() + 3_600_000) } : { attempts: 1 }),
      });
      if (status !== 'pending') {
        await insertAttempt(db, { deliveryId: row.id, attemptNumber: 1, startedAt: createdAt, durationMs: 1 });
      }
      ids.push(row.id);
    }
    return ids;
  }
  const idsOf = async (endpointId: string) =>
    (await db.prisma.webhookDelivery.findMany({ where: { endpointId }, select: { id: true } })).map((r) => r.id).sort();

  it('deletes the oldest finished deliveries beyond the cap, in batches, never pending ones', async () => {
    const busy = await endpoint();
    const atCap = await endpoint();
    // Oldest first: two old pending rows, then seven finished ones.
    const busyIds = await deliveries(busy.id, [
      'pending',
      'pending',
      'success',
      'failed',
      'cancelled',
      'success',
      'failed',
      'success',
      'success',
    ]);
    const atCapIds = await deliveries(atCap.id, ['success', 'failed', 'success']);

    const cap = 3;
    // Six rows are past the cap; four of them are finished.
    expect(await queue.pruneDeliveriesOverCap(cap, 2)).toBe(2);
    expect(await queue.pruneDeliveriesOverCap(cap, 2)).toBe(2);
    expect(await queue.pruneDeliveriesOverCap(cap, 2)).toBe(0);

    // The three newest stay; of the six older rows, the two pending ones stay too.
    expect(await idsOf(busy.id)).toEqual([...busyIds.slice(0, 2), ...busyIds.slice(-3)].sort());
    expect(await idsOf(atCap.id)).toEqual([...atCapIds].sort());
    // Attempts of deleted deliveries went with them.
    expect(await db.prisma.webhookDeliveryAttempt.count({ where: { deliveryId: { in: busyIds.slice(2, 6) } } })).toBe(0);
    expect(await db.prisma.webhookDeliveryAttempt.count({ where: { deliveryId: { in: busyIds.slice(-3) } } })).toBe(3);
  });

  it('leaves an endpoint whose rows beyond the cap are all pending as it is', async () => {
    const backlog = await endpoint();
    const ids = await deliveries(backlog.id, ['pending', 'pending', 'pending', 'success']);
    expect(await queue.pruneDeliveriesOverCap(1, 100)).toBe(0);
    expect(await idsOf(backlog.id)).toEqual([...ids].sort());
  });

  it("is enforced by the worker's retention job", async () => {
    const ep = await endpoint();
    const ids = await deliveries(ep.id, ['success', 'failed', 'pending', 'success', 'success', 'failed', 'success']);
    const logs: string[] = [];
    const logger = { error: () => {}, warn: () => {}, debug: () => {}, info: (_obj: object, msg?: string) => void logs.push(msg ?? '') };
    const box = new SecretBox(Buffer.alloc(32, 1));
    const worker = standaloneWorker(queue, logger, box, {
      sweepIntervalMs: 60_000,
      maxDeliveriesPerEndpoint: 4,
      retentionFirstRunDelayMs: 0,
    });
    worker.start();
    try {
      await waitFor(async () => (await idsOf(ep.id)).length === 5, { what: 'the retention job to prune down to the cap' });
    } finally {
      await worker.stop();
    }
    // The four newest, and the pending row that is older than them.
    expect(await idsOf(ep.id)).toEqual([ids[2]!, ...ids.slice(-4)].sort());
    expect(logs).toContain('webhook deliveries over the per-endpoint cap pruned');
  });
});

describe('WEBHOOK_MAX_DELIVERIES_PER_ENDPOINT', () => {
  const load = (value?: string) =>
    loadConfig({ ...TEST_ENV, DATA_DIR: 'memory', ...(value === undefined ? {} : { WEBHOOK_MAX_DELIVERIES_PER_ENDPOINT: value }) });

  it('defaults to 10,000 and takes a positive whole number', () => {
    expect(load().webhooks.maxDeliveriesPerEndpoint).toBe(10_000);
    expect(load('250').webhooks.maxDeliveriesPerEndpoint).toBe(250);
  });

  it.each(['0', '-1', '1.5', 'lots'])('refuses %s, naming the variable', (value) => {
    expect(() => load(value)).toThrow(ConfigError);
    expect(() => load(value)).toThrow(/WEBHOOK_MAX_DELIVERIES_PER_ENDPOINT/);
  });
});
