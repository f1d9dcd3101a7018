import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../src/db/database.ts';
import type { DeliveryQueue } from '../../src/webhooks/queue/delivery-queue.ts';
import { insertDelivery, setDelivery } from '../helpers/deliveries.ts';
import { openQueueStore, type QueueStore } from '../helpers/queue-store.ts';

/** DeliveryQueue.makeDue (redeliver) against claims and the attempt cap, on a real store. */
describe('DeliveryQueue.makeDue', () => {
  let db: Database;
  let queue: DeliveryQueue;
  let userId: string;
  let fixture: QueueStore | undefined;

  beforeAll(async () => {
    fixture = await openQueueStore('redeliver');
    ({ db, queue, userId } = fixture);
  });
  afterAll(async () => fixture?.close());

  let urlCounter = 0;
  const endpoint = () =>
    db.prisma.webhookEndpoint.create({
      data: { userId, url: `https://example.com/${++urlCounter}`, secretEncrypted: 'sealed', events: ['card.viewed'] },
    });
  const delivery = (endpointId: string, data: { status?: 'pending' | 'failed'; attempts?: number } = {}) =>
    insertDelivery(db, {
      endpointId,
      eventType: 'card.viewed',
      ...data,
      ...(data.status === 'failed' ? {} : { nextRetryAt: new Date(Date.now() - 1_000) }),
    });
  const claimOptions = { limit: 10, leaseMs: 60_000, perEndpointLimit: 8, inFlightByEndpoint: new Map<string, number>() };

  // On PostgreSQL the two statements run on two pooled connections and truly race; the
  // embedded store runs them one after the other, where the rule must hold just the same.
  it('never voids a claim that commits while the redeliver waits for the row: one holder at a time', async () => {
    const ep = await endpoint();
    const row = await delivery(ep.id);
    for (let round = 0; round < 200; round++) {
      // Neither claims nor redelivers finish it, so it stays pending: it only needs to be unclaimed and due.
      await setDelivery(db, row.id, { claimToken: null, nextRetryAt: new Date() });
      const [claim, redeliver] = await Promise.all([queue.claimDueDeliveries(claimOptions), queue.makeDue(ep.id, row.id, 1000)]);
      const claimed = claim.deliveries.find((d) => d.id === row.id);
      if (!claimed) continue;
      const stored = await db.prisma.webhookDelivery.findUniqueOrThrow({ where: { id: row.id } });
      // The claimer is sending it: the row must still be its, not unclaimed and due for another worker.
      expect({ round, claimToken: stored.claimToken, redeliverScheduled: redeliver.scheduled }).toEqual({
        round,
        claimToken: claimed.claimToken,
        redeliverScheduled: redeliver.scheduled,
      });
    }
  });

  it('refuses past the attempt cap and leaves the row as it was', async () => {
    const ep = await endpoint();
    const spent = await delivery(ep.id, { status: 'failed', attempts: 5 });
    expect(await queue.makeDue(ep.id, spent.id, 5)).toEqual({ found: true, scheduled: false, attemptLimitReached: true });
    expect(await db.prisma.webhookDelivery.findUniqueOrThrow({ where: { id: spent.id } })).toMatchObject({ status: 'failed', attempts: 5 });

    const oneLeft = await delivery(ep.id, { status: 'failed', attempts: 4 });
    expect(await queue.makeDue(ep.id, oneLeft.id, 5)).toEqual({ found: true, scheduled: true, attemptLimitReached: false });
    expect(await queue.makeDue(randomUUID(), oneLeft.id, 5)).toEqual({ found: false, scheduled: false, attemptLimitReached: false });
  });

  it('checks the cap on the row it updates, so a redeliver racing an attempt that reaches the cap does not pass it', async () => {
    for (let round = 0; round < 50; round++) {
      // A fresh endpoint each round: fifteen failures in a row would disable one.
      const ep = await endpoint();
      const row = await delivery(ep.id, { status: 'pending', attempts: 2 });
      const { deliveries } = await queue.claimDeliveries([row.id], claimOptions);
      const token = deliveries[0]!.claimToken;
      // The last allowed attempt fails for good while a redeliver arrives.
      const [, redeliver] = await Promise.all([
        queue.completeAttempts([
          {
            deliveryId: row.id,
            endpointId: ep.id,
            coalescedBody: null,
            claimToken: token,
            startedAt: new Date(),
            durationMs: 1,
            responseCode: 500,
            responseBody: null,
            error: 'HTTP 500',
            outcome: 'failed',
            delayMs: null,
            signed: null,
            responseDate: null,
          },
        ]),
        queue.makeDue(ep.id, row.id, 3),
      ]);
      const stored = await db.prisma.webhookDelivery.findUniqueOrThrow({ where: { id: row.id } });
      expect(stored.attempts).toBe(3);
      expect({ round, status: stored.status, scheduled: redeliver.scheduled }).toEqual({ round, status: 'failed', scheduled: false });
    }
  });
});
