import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Database } from '../../src/db/database.ts';
import { cancelPendingDeliveries } from '../../src/webhooks/endpoints/endpoint-service.ts';
import { MAX_COALESCED_VIEWERS, type CoalescedCardViewedData } from '../../src/webhooks/events.ts';
import type { DeliveryQueue } from '../../src/webhooks/queue/delivery-queue.ts';
import type { ClaimOptions, InsertClaim } from '../../src/webhooks/queue/types.ts';
import { makeDueNow } from '../helpers/deliveries.ts';
import { waitFor } from '../helpers/wait.ts';
import { fanOutEvent, openQueueStore, type QueueStore } from '../helpers/queue-store.ts';

/** Coalescing of card.viewed in the queue's SQL, on a real store (both kinds), without an app or a worker. */
describe('DeliveryQueue: coalesced card.viewed', () => {
  let db: Database;
  let queue: DeliveryQueue;
  let userId: string;
  let fixture: QueueStore | undefined;

  beforeAll(async () => {
    fixture = await openQueueStore('coalesce');
    ({ db, queue, userId } = fixture);
  });
  afterAll(async () => fixture?.close());
  beforeEach(async () => {
    await db.prisma.webhookEndpoint.deleteMany();
  });

  let urlCounter = 0;
  async function endpoint(coalesceSeconds: number, events = ['card.viewed', 'contact.saved']) {
    return db.prisma.webhookEndpoint.create({
      data: { userId, url: `https://example.com/${++urlCounter}`, secretEncrypted: 'sealed', events, coalesceSeconds },
    });
  }
  const viewer = (i: number) => ({ id: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`, username: `viewer${i}` });
  const CARD = randomUUID();
  const OTHER_CARD = randomUUID();

  /** What DeliveryDispatcher.dispatch does for a view: the same envelope and coalescing. */
  async function view(
    options: { cardId?: string | null; viewer?: { id: string; username: string } | null; at?: Date; claim?: InsertClaim } = {},
  ) {
    const data = { cardId: options.cardId === undefined ? CARD : options.cardId, viewer: options.viewer ?? null, source: 'qr' as const };
    const event = fanOutEvent('card.viewed', data, options.at);
    const rows = await queue.insertForSubscribers({ ...event, userId, notify: db.kind === 'postgres', claim: options.claim });
    // The envelope as its deliveries hold it: the fan-out fills the subscriber's id in.
    const payload = { ...event.envelope, data: { ...event.envelope.data, userId } };
    return { eventId: event.eventId, payload, rows };
  }
  const rowsOf = (endpointId: string) => db.prisma.webhookDelivery.findMany({ where: { endpointId }, orderBy: { createdAt: 'asc' } });
  const dataOf = (row: { payload: unknown }) => (row.payload as { data: CoalescedCardViewedData }).data;
  /** Lets time pass for the queue: the endpoint's open rows come due now (claimed ones keep their lease). */
  const makeDue = (endpointId: string) => makeDueNow(db, { endpointId, claimed: false });
  const claimOptions: ClaimOptions = { limit: 1000, leaseMs: 60_000, perEndpointLimit: 1000, inFlightByEndpoint: new Map() };

  it('opens an unclaimed row due a window later, even from a claiming dispatch; other endpoints are served as before', async () => {
    const coalescing = await endpoint(60);
    const plain = await endpoint(0);
    const token = randomUUID();
    const { eventId, payload, rows } = await view({ viewer: viewer(1), claim: { token, leaseMs: 60_000, saturated: [] } });

    const opened = rows.find((r) => r.endpointId === coalescing.id)!;
    expect(opened.claimed).toBeUndefined();
    expect(opened.coalescingDueInMs).toBeGreaterThan(55_000);
    // The column keeps milliseconds and the delay is rounded up, so it can read one more.
    expect(opened.coalescingDueInMs).toBeLessThanOrEqual(60_001);
    const [stored] = await rowsOf(coalescing.id);
    expect(stored).toMatchObject({ id: opened.id, eventId, status: 'pending', claimToken: null, coalesceKey: expect.any(String) });
    expect(stored!.nextRetryAt!.getTime()).toBeGreaterThan(Date.now() + 55_000);
    expect(stored!.payload).toEqual({
      ...payload,
      data: { ...payload.data, count: 1, firstViewedAt: payload.timestamp, lastViewedAt: payload.timestamp, viewers: [viewer(1)] },
    });

    // The endpoint without a window: claimed at insert, the contract payload and no key, as before.
    const served = rows.find((r) => r.endpointId === plain.id)!;
    expect(served.claimed?.claimToken).toBe(token);
    expect(served.coalescingDueInMs).toBeUndefined();
    const [plainRow] = await rowsOf(plain.id);
    expect(plainRow).toMatchObject({ claimToken: token, coalesceKey: null, payload });
    // Not due, so no claim takes it early.
    expect((await queue.claimDueDeliveries(claimOptions)).deliveries).toEqual([]);
  });

  it('folds further views into the open row: count, earliest and latest time, distinct viewers in order', async () => {
    const ep = await endpoint(60);
    const t0 = Date.parse('2026-11-29T10:00:00.000Z');
    const first = await view({ viewer: viewer(1), at: new Date(t0) });
    await view({ viewer: viewer(2), at: new Date(t0 + 1_000) });
    await view({ viewer: null, at: new Date(t0 + 2_000) });
    // Repeated viewer, and a view stamped before the first one (a slower concurrent request).
    const late = await view({ viewer: viewer(1), at: new Date(t0 - 500) });
    expect(late.rows.map((r) => r.id)).toEqual(first.rows.map((r) => r.id));

    const rows = await rowsOf(ep.id);
    expect(rows).toHaveLength(1);
    // The envelope stays the opening view's; only the aggregate grows.
    expect(rows[0]).toMatchObject({ eventId: first.eventId, claimToken: null });
    expect(rows[0]!.payload).toMatchObject({ id: first.eventId, timestamp: first.payload.timestamp });
    expect(dataOf(rows[0]!)).toEqual({
      userId,
      cardId: CARD,
      viewer: viewer(1),
      source: 'qr',
      count: 4,
      firstViewedAt: new Date(t0 - 500).toISOString(),
      lastViewedAt: new Date(t0 + 2_000).toISOString(),
      viewers: [viewer(1), viewer(2)],
    });
  });

  it(`keeps counting past ${MAX_COALESCED_VIEWERS} viewers but lists only the first ${MAX_COALESCED_VIEWERS}`, async () => {
    const ep = await endpoint(60);
    const total = MAX_COALESCED_VIEWERS + 5;
    for (let i = 1; i <= total; i++) await view({ viewer: viewer(i) });
    const [row, ...rest] = await rowsOf(ep.id);
    expect(rest).toEqual([]);
    expect(dataOf(row!).count).toBe(total);
    expect(dataOf(row!).viewers).toEqual(Array.from({ length: MAX_COALESCED_VIEWERS }, (_, i) => viewer(i + 1)));
  });

  it('keeps cards, the profile and endpoints apart', async () => {
    const a = await endpoint(60);
    const b = await endpoint(30);
    await view({ cardId: CARD });
    await view({ cardId: OTHER_CARD });
    await view({ cardId: null });
    await view({ cardId: null });
    await view({ cardId: CARD });
    for (const ep of [a, b]) {
      const rows = await rowsOf(ep.id);
      const byCard = new Map(rows.map((r) => [dataOf(r).cardId, dataOf(r).count]));
      expect(rows).toHaveLength(3);
      expect(Object.fromEntries(byCard)).toEqual({ [CARD]: 2, [OTHER_CARD]: 1, null: 2 });
    }
  });

  it('never coalesces other events, nor views at an endpoint with no window', async () => {
    const ep = await endpoint(60);
    const plain = await endpoint(0);
    for (let i = 0; i < 2; i++) {
      const rows = await queue.insertForSubscribers({
        ...fanOutEvent('contact.saved', { cardId: CARD, savedBy: viewer(1) }),
        userId,
        notify: false,
      });
      expect(rows[0]!.coalescingDueInMs).toBeUndefined();
    }
    await view();
    await view();
    const saves = (await rowsOf(ep.id)).filter((r) => r.eventType === 'contact.saved');
    expect(saves).toHaveLength(2);
    expect(saves.every((r) => r.coalesceKey === null && r.nextRetryAt!.getTime() <= Date.now() + 1_000)).toBe(true);
    const plainViews = (await rowsOf(plain.id)).filter((r) => r.eventType === 'card.viewed');
    expect(plainViews).toHaveLength(2);
    expect(plainViews.every((r) => r.coalesceKey === null && dataOf(r).count === undefined)).toBe(true);
  });

  it('a claim closes the row: it goes out as it stood, and the next view opens a new one', async () => {
    const ep = await endpoint(60);
    const opened = await view({ viewer: viewer(1) });
    await view({ viewer: viewer(2) });
    await makeDue(ep.id);
    const { deliveries } = await queue.claimDueDeliveries(claimOptions);
    expect(deliveries.map((d) => d.id)).toEqual(opened.rows.map((r) => r.id));
    expect((JSON.parse(deliveries[0]!.body) as { data: CoalescedCardViewedData }).data.count).toBe(2);

    const next = await view({ viewer: viewer(3) });
    expect(next.rows[0]!.id).not.toBe(opened.rows[0]!.id);
    const [closed, fresh] = await rowsOf(ep.id);
    expect(closed).toMatchObject({ id: opened.rows[0]!.id, coalesceKey: null, claimToken: expect.any(String) });
    expect(dataOf(closed!).count).toBe(2);
    expect(fresh).toMatchObject({ eventId: next.eventId, claimToken: null, coalesceKey: expect.any(String) });
    expect(dataOf(fresh!)).toMatchObject({ count: 1, viewers: [viewer(3)] });
  });

  it('redelivering an open delivery makes it due now, as it stands; taking it closes it', async () => {
    const ep = await endpoint(60);
    const opened = await view({ viewer: viewer(1) });
    const id = opened.rows[0]!.id;
    expect(await queue.makeDue(ep.id, id, 25)).toEqual({ found: true, scheduled: true, attemptLimitReached: false });
    const { deliveries } = await queue.claimDeliveries([id], claimOptions);
    expect(deliveries.map((d) => d.id)).toEqual([id]);
    expect((await rowsOf(ep.id))[0]!.coalesceKey).toBeNull();
    expect((await view()).rows[0]!.id).not.toBe(id);
  });

  it('cancelling closes the row too: after a re-enable, views open a new one', async () => {
    const byOwner = await endpoint(60);
    await view();
    await db.prisma.$transaction(async (tx) => {
      await tx.webhookEndpoint.update({ where: { id: byOwner.id }, data: { isActive: false } });
      await cancelPendingDeliveries(tx, byOwner.id);
    });
    // Disabled behind the engine's back: the claim finds its due row and cancels it.
    const byEngine = await endpoint(60);
    await view();
    await db.prisma.webhookEndpoint.update({ where: { id: byEngine.id }, data: { isActive: false } });
    await makeDue(byEngine.id);
    expect(await queue.claimDueDeliveries(claimOptions)).toMatchObject({ deliveries: [], cancelled: 1 });

    await db.prisma.webhookEndpoint.updateMany({ where: { id: { in: [byOwner.id, byEngine.id] } }, data: { isActive: true } });
    await view();
    for (const ep of [byOwner, byEngine]) {
      const rows = await rowsOf(ep.id);
      expect(rows.map((r) => [r.status, r.coalesceKey === null, dataOf(r).count])).toEqual([
        ['cancelled', true, 1],
        ['pending', false, 1],
      ]);
    }
  });

  it('folds concurrent views into exactly one row with the right count', async () => {
    const ep = await endpoint(60);
    const views = 50;
    const results = await Promise.all(Array.from({ length: views }, (_, i) => view({ viewer: viewer(i) })));
    const rows = await rowsOf(ep.id);
    expect(rows).toHaveLength(1);
    expect(new Set(results.map((r) => r.rows[0]!.id))).toEqual(new Set([rows[0]!.id]));
    expect(dataOf(rows[0]!).count).toBe(views);
    expect(dataOf(rows[0]!).viewers).toHaveLength(MAX_COALESCED_VIEWERS);
    expect(new Set(dataOf(rows[0]!).viewers.map((v) => v.id)).size).toBe(MAX_COALESCED_VIEWERS);
  });

  it('views racing claims: every view is counted exactly once, and no claimed row takes another view', async () => {
    const ep = await endpoint(60);
    const views = 120;
    const claimedCounts = new Map<string, number>();
    let viewing = true;
    const claiming = (async () => {
      // Closes whatever is open, again and again, while the views arrive.
      while (viewing) {
        await makeDue(ep.id);
        const { deliveries } = await queue.claimDueDeliveries(claimOptions);
        for (const d of deliveries) claimedCounts.set(d.id, (JSON.parse(d.body) as { data: CoalescedCardViewedData }).data.count);
      }
    })();
    const pending = [];
    for (let i = 0; i < views; i++) {
      pending.push(view({ viewer: viewer(i % 7) }));
      if (i % 10 === 9) await Promise.all(pending.splice(0));
      // Halfway, a claim must have closed a row, so the views after it race a claimed row
      // (on a loaded machine the views could otherwise all land before the first claim).
      if (i === views / 2 - 1) await waitFor(() => claimedCounts.size > 0, { what: 'a claim during the views' });
    }
    viewing = false;
    await claiming;

    const rows = await rowsOf(ep.id);
    expect(rows.reduce((sum, r) => sum + dataOf(r).count, 0)).toBe(views);
    expect(claimedCounts.size).toBeGreaterThan(0);
    for (const row of rows) {
      const atClaim = claimedCounts.get(row.id);
      if (atClaim === undefined) {
        // At most one row is still open, and it holds the key.
        expect(row).toMatchObject({ claimToken: null, coalesceKey: expect.any(String) });
      } else {
        expect(row.coalesceKey).toBeNull();
        expect(dataOf(row).count).toBe(atClaim);
      }
    }
    expect(rows.filter((r) => r.coalesceKey !== null).length).toBeLessThanOrEqual(1);
  });
});
