import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Database } from '../../src/db/database.ts';
import type { DeliveryQueue } from '../../src/webhooks/queue/delivery-queue.ts';
import type { ClaimOptions, ClaimResult } from '../../src/webhooks/queue/types.ts';
import { insertDelivery } from '../helpers/deliveries.ts';
import { fanOutEvent, openQueueStore, type QueueStore } from '../helpers/queue-store.ts';
import { sleep } from '../helpers/wait.ts';

/** Pacing in the queue's own statements (queue/pacing.ts), on a real store of either kind, without a worker. */
describe('DeliveryQueue: paced endpoints', () => {
  let db: Database;
  let queue: DeliveryQueue;
  let userId: string;
  let fixture: QueueStore | undefined;

  beforeAll(async () => {
    fixture = await openQueueStore('pacing');
    ({ db, queue, userId } = fixture);
  });
  afterAll(async () => fixture?.close());
  beforeEach(async () => {
    await db.prisma.webhookEndpoint.deleteMany();
  });

  let urlCounter = 0;
  const endpoint = (maxPerSecond: number | null = null) =>
    db.prisma.webhookEndpoint.create({
      data: { userId, url: `https://example.com/${++urlCounter}`, secretEncrypted: 'sealed', events: ['card.viewed'], maxPerSecond },
    });
  async function pendingRows(endpointId: string, count: number): Promise<void> {
    for (let i = 0; i < count; i++) {
      await insertDelivery(db, { endpointId, eventType: 'card.viewed', nextRetryAt: new Date(Date.now() - 1_000) });
    }
  }
  const options = (overrides: Partial<ClaimOptions> = {}): ClaimOptions => ({
    limit: 100,
    leaseMs: 60_000,
    perEndpointLimit: 100,
    inFlightByEndpoint: new Map(),
    ...overrides,
  });
  const claimedOf = (result: ClaimResult, endpointId: string) => result.deliveries.filter((d) => d.endpointId === endpointId).length;
  const claimedRows = (endpointId: string) =>
    db.prisma.webhookDelivery.count({ where: { endpointId, status: 'pending', claimToken: { not: null } } });

  it('claims a paced endpoint only as many rows as its turns allow, and says when the next one comes; others are untouched by it', async () => {
    // 1 a second: a burst of one, one turn a second (long enough for the embedded store's slower statements).
    const paced = await endpoint(1);
    const free = await endpoint();
    await pendingRows(paced.id, 10);
    await pendingRows(free.id, 10);

    const first = await queue.claimDueDeliveries(options());
    expect(claimedOf(first, paced.id)).toBe(1);
    expect(claimedOf(first, free.id)).toBe(10);
    expect(first.pacedWaitMs).toBeGreaterThan(900);
    expect(first.pacedWaitMs).toBeLessThanOrEqual(1000);
    // Waiting for a turn is not more to claim now.
    expect(first.mayHaveMore).toBe(false);

    const second = await queue.claimDueDeliveries(options());
    expect(second.deliveries).toEqual([]);
    // The rows wait in the queue, unclaimed, and the wake timer is aimed at the turn rather than at "due now".
    expect(await claimedRows(paced.id)).toBe(1);
    const wake = await queue.nextDueInMs();
    expect(wake).toBeGreaterThan(500);
    expect(wake).toBeLessThanOrEqual(1000);

    await sleep(wake! + 20);
    const third = await queue.claimDueDeliveries(options());
    expect(claimedOf(third, paced.id)).toBe(1);
  });

  it('allows a burst of a tenth of a second of a fast endpoint, then as many rows as turns have come', async () => {
    // 200 a second: a burst of 20, a turn every 5 ms.
    const rate = 200;
    const fast = await endpoint(rate);
    await pendingRows(fast.id, 150);
    const startedAt = performance.now();
    expect((await queue.claimDueDeliveries(options())).deliveries).toHaveLength(20);
    let claimed = 20;
    while (claimed < 150 && performance.now() - startedAt < 2_000) {
      await sleep(10);
      claimed += (await queue.claimDueDeliveries(options())).deliveries.length;
      // Every claim's clock is between our start and now: never more than the burst and a turn per 5 ms since.
      expect(claimed).toBeLessThanOrEqual(20 + Math.ceil((rate * (performance.now() - startedAt)) / 1000));
    }
    const elapsedMs = performance.now() - startedAt;
    // And the turns are given, not lost: at least half of them were claimed.
    expect(claimed).toBeGreaterThanOrEqual(Math.min(150, 20 + (rate * elapsedMs) / 2000));
  });

  it('the fan-out leaves a paced endpoint’s rows unclaimed for the claim, while claiming the others for the worker', async () => {
    const paced = await endpoint(1000);
    const free = await endpoint();
    const rows = await queue.insertForSubscribers({
      ...fanOutEvent('card.viewed', { cardId: null, viewer: null, source: 'link' }),
      userId,
      notify: false,
      claim: { token: randomUUID(), leaseMs: 60_000, saturated: [] },
    });
    expect(rows.find((r) => r.endpointId === paced.id)?.claimed).toBeUndefined();
    expect(rows.find((r) => r.endpointId === free.id)?.claimed).toBeDefined();
  });

  it('rows of a paced endpoint waiting for a turn do not fill the scan: other endpoints behind them are claimed', async () => {
    const paced = await endpoint(1);
    await pendingRows(paced.id, 300);
    const free = await endpoint();
    await insertDelivery(db, { endpointId: free.id, eventType: 'card.viewed', nextRetryAt: new Date() });
    // The first claim spends the paced endpoint's turn on its oldest row; its other 299 rows come before the free one.
    const first = await queue.claimDueDeliveries(options({ limit: 64 }));
    expect(claimedOf(first, paced.id)).toBe(1);
    const second = await queue.claimDueDeliveries(options({ limit: 64 }));
    expect(claimedOf(second, free.id)).toBe(1);
    expect(claimedOf(second, paced.id)).toBe(0);
  });

  it('an endpoint no longer paced has its rows claimed at once, whatever turn it was owed', async () => {
    const once = await endpoint(1);
    await pendingRows(once.id, 5);
    expect(claimedOf(await queue.claimDueDeliveries(options()), once.id)).toBe(1);
    await db.prisma.webhookEndpoint.update({ where: { id: once.id }, data: { maxPerSecond: null } });
    expect(claimedOf(await queue.claimDueDeliveries(options()), once.id)).toBe(4);
  });

  it('an unpaced endpoint is never locked nor written by a claim (no WAL for its row); a paced one is', async () => {
    const free = await endpoint();
    const paced = await endpoint(1000);
    await pendingRows(free.id, 3);
    await pendingRows(paced.id, 3);
    expect((await queue.claimDueDeliveries(options())).deliveries).toHaveLength(6);
    // A row lock or an update leaves its transaction id in the row's xmax.
    const xmax = async (id: string) =>
      (await db.sql.query<{ xmax: string }>('SELECT xmax::text AS xmax FROM webhook_endpoints WHERE id = $1::uuid', [id]))[0]?.xmax;
    expect(await xmax(free.id)).toBe('0');
    expect(await xmax(paced.id)).not.toBe('0');
    expect((await db.prisma.webhookEndpoint.findUniqueOrThrow({ where: { id: free.id } })).pacedUntil).toBeNull();
  });

  // Concurrent claims need a server; the embedded store runs one statement at a time.
  it.skipIf(!process.env.DATABASE_URL)(
    'concurrent claims on several connections share one endpoint’s turns, even when each looks at other rows',
    async () => {
      // 10 a second: a burst of one.
      const paced = await endpoint(10);
      await pendingRows(paced.id, 40);
      const ids = (await db.prisma.webhookDelivery.findMany({ where: { endpointId: paced.id }, select: { id: true } })).map((r) => r.id);
      // Eight connections open before the first round, so that it is not spent opening them.
      await Promise.all(Array.from({ length: 8 }, () => db.sql.query('SELECT 1')));
      for (let round = 0; round < 4; round++) {
        // Eight workers at once, each claiming rows it was handed (as a dispatch hands them), none the same.
        const mine = Array.from({ length: 8 }, (_, i) => ids.slice(round * 8 + i, round * 8 + i + 1));
        const startedAt = performance.now();
        const results = await Promise.all(mine.map((rows) => queue.claimDeliveries(rows, options())));
        // The claims wait for one another's pacing lock: on a slow machine a round outlasts a turn,
        // and the next turn is then rightly taken. Unpaced, all eight would be claimed.
        const turns = 1 + Math.floor((performance.now() - startedAt) / 100);
        const claimed = results.reduce((sum, result) => sum + claimedOf(result, paced.id), 0);
        expect(claimed, `round ${round}`).toBeLessThanOrEqual(turns);
        await sleep(110);
      }
      // Turns are not lost to the race either: one claimed per 100 ms turn.
      expect(await claimedRows(paced.id)).toBeGreaterThanOrEqual(3);
    },
  );
});
