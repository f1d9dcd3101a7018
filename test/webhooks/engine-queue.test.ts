import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Database } from '../../src/db/database.ts';
import type { DeliveryQueue } from '../../src/webhooks/queue/delivery-queue.ts';
import type { AttemptRecord, ClaimOptions } from '../../src/webhooks/queue/types.ts';
import { AUTO_DISABLE_AFTER_CONSECUTIVE_FAILURES } from '../../src/webhooks/delivery/retry-policy.ts';
import { insertAttempt, insertDelivery } from '../helpers/deliveries.ts';
import { fanOutEvent, openQueueStore, type QueueStore } from '../helpers/queue-store.ts';
import { waitFor } from '../helpers/wait.ts';

/** The queue's SQL on a real store (both kinds), without an app or a worker around it. */
describe('DeliveryQueue', () => {
  let db: Database;
  let queue: DeliveryQueue;
  let userId: string;

  let fixture: QueueStore | undefined;

  beforeAll(async () => {
    fixture = await openQueueStore('q');
    ({ db, queue, userId } = fixture);
  });
  afterAll(async () => fixture?.close());
  beforeEach(async () => {
    await db.prisma.webhookEndpoint.deleteMany();
  });

  let urlCounter = 0;
  async function endpoint(data: { events?: string[]; isActive?: boolean; consecutiveFailures?: number } = {}) {
    return db.prisma.webhookEndpoint.create({
      data: { userId, url: `https://example.com/${++urlCounter}`, secretEncrypted: 'sealed', events: ['card.viewed'], ...data },
    });
  }
  /** A delivery due in `dueInMs` when pending; a finished one (`status`) has no due time. */
  async function pending(
    endpointId: string,
    dueInMs = 0,
    extra: { claimToken?: string; createdAt?: Date; status?: 'pending' | 'success' | 'failed' } = {},
  ) {
    const status = extra.status ?? 'pending';
    return insertDelivery(db, {
      endpointId,
      eventType: 'card.viewed',
      ...extra,
      ...(status === 'pending' ? { nextRetryAt: new Date(Date.now() + dueInMs) } : {}),
    });
  }
  const options = (overrides: Partial<ClaimOptions> = {}): ClaimOptions => ({
    limit: 100,
    leaseMs: 60_000,
    perEndpointLimit: 8,
    inFlightByEndpoint: new Map(),
    ...overrides,
  });
  const row = (id: string) => db.prisma.webhookDelivery.findUniqueOrThrow({ where: { id }, include: { attemptsLog: true } });
  function record(
    delivery: { id: string; endpointId: string },
    claimToken: string,
    outcome: AttemptRecord['outcome'],
    overrides: Partial<AttemptRecord> = {},
  ): AttemptRecord {
    return {
      deliveryId: delivery.id,
      endpointId: delivery.endpointId,
      coalescedBody: null,
      claimToken,
      startedAt: new Date(),
      durationMs: 12,
      responseCode: outcome === 'success' ? 200 : outcome === 'gone' ? 410 : 500,
      responseBody: 'body',
      error: outcome === 'success' ? null : 'HTTP 500',
      outcome,
      delayMs: outcome === 'retry' ? 5_000 : null,
      signed: null,
      responseDate: null,
      ...overrides,
    };
  }

  it('fans an event out to active subscribed endpoints of the user in one statement', async () => {
    const subscribed = await endpoint({ events: ['card.viewed', 'contact.saved'] });
    await endpoint({ events: ['contact.saved'] });
    await endpoint({ isActive: false });
    const event = fanOutEvent('card.viewed', { cardId: null, viewer: null, source: 'link' });
    const rows = await queue.insertForSubscribers({ ...event, userId, notify: db.kind === 'postgres' });
    expect(rows.map((r) => r.endpointId)).toEqual([subscribed.id]);
    const stored = await row(rows[0]!.id);
    expect(stored).toMatchObject({
      eventId: event.eventId,
      eventType: 'card.viewed',
      status: 'pending',
      attempts: 0,
      claimToken: null,
      body: event.bodyFor(userId),
    });
    expect(Math.abs(stored.nextRetryAt!.getTime() - Date.now())).toBeLessThan(5_000);
    expect(
      await queue.insertForSubscribers({
        ...fanOutEvent('card.viewed', { cardId: null, viewer: null, source: 'link' }),
        userId: randomUUID(),
        notify: false,
      }),
    ).toEqual([]);
  });

  it('fans out already claimed for an in-process worker, except to saturated endpoints, and returns what sending needs', async () => {
    const free = await endpoint();
    const saturated = await endpoint();
    const token = randomUUID();
    const event = fanOutEvent('card.viewed', { cardId: null, viewer: null, source: 'link' });
    const rows = await queue.insertForSubscribers({
      ...event,
      userId,
      notify: false,
      claim: { token, leaseMs: 60_000, saturated: [saturated.id] },
    });
    const byEndpoint = new Map(rows.map((r) => [r.endpointId, r]));
    expect(byEndpoint.size).toBe(2);

    const claimed = byEndpoint.get(free.id)!;
    expect(claimed.claimed).toMatchObject({
      id: claimed.id,
      endpointId: free.id,
      eventId: event.eventId,
      eventType: 'card.viewed',
      body: event.bodyFor(userId),
      attempts: 0,
      claimToken: token,
      url: free.url,
      secretEncrypted: 'sealed',
      previousSecretEncrypted: null,
    });
    const claimedRow = await row(claimed.id);
    expect(claimedRow).toMatchObject({ status: 'pending', claimToken: token });
    // Due again only when the lease runs out, exactly as a claim leaves a row.
    expect(claimedRow.nextRetryAt!.getTime()).toBeGreaterThan(Date.now() + 50_000);

    const left = byEndpoint.get(saturated.id)!;
    expect(left.claimed).toBeUndefined();
    const leftRow = await row(left.id);
    expect(leftRow.claimToken).toBeNull();
    expect(leftRow.nextRetryAt!.getTime()).toBeLessThanOrEqual(Date.now() + 1_000);

    // The claimed row is not claimable by anyone else; the other one is.
    const other = await queue.claimDueDeliveries(options());
    expect(other.deliveries.map((d) => d.id)).toEqual([left.id]);
    // And the claim is a real one: its token writes the result.
    const [applied] = await queue.completeAttempts([record(claimed, token, 'success')]);
    expect(applied).toMatchObject({ deliveryId: claimed.id, outcome: 'success', attemptNumber: 1 });
  });

  it('claims due rows with a lease and a token; a second claim gets nothing until the lease expires', async () => {
    const ep = await endpoint();
    const due = await pending(ep.id);
    const later = await pending(ep.id, 60_000);

    // Long enough that a loaded machine reaches the second claim within it.
    const leaseMs = 3_000;
    const claimedAt = Date.now();
    const first = await queue.claimDueDeliveries(options({ leaseMs }));
    expect(first.deliveries.map((d) => d.id)).toEqual([due.id]);
    const claimed = first.deliveries[0]!;
    expect(claimed).toMatchObject({ endpointId: ep.id, url: ep.url, secretEncrypted: 'sealed', attempts: 0, body: due.body });
    const leased = await row(due.id);
    expect(leased.claimToken).toBe(claimed.claimToken);
    // One lease past the claim (same clock for the database and the test; 20 ms for rounding).
    expect(leased.nextRetryAt!.getTime()).toBeGreaterThanOrEqual(claimedAt + leaseMs - 20);
    expect(first.mayHaveMore).toBe(false);

    expect((await queue.claimDueDeliveries(options())).deliveries).toEqual([]);
    expect(await queue.countDue()).toBe(0);
    expect(await queue.nextDueInMs()).toBeGreaterThan(50_000);

    // The lease expires: the row is due again and another claim takes it with a new token.
    await waitFor(async () => (await queue.countDue()) === 1, { what: 'the lease to expire' });
    const second = await queue.claimDueDeliveries(options());
    expect(second.deliveries.map((d) => d.id)).toEqual([due.id]);
    expect(second.deliveries[0]!.claimToken).not.toBe(claimed.claimToken);

    // The late first worker's result is ignored; the current holder's applies.
    expect(await queue.completeAttempts([record(due, claimed.claimToken, 'success')])).toEqual([]);
    expect(await row(due.id)).toMatchObject({ status: 'pending', attempts: 0, attemptsLog: [] });
    const applied = await queue.completeAttempts([record(due, second.deliveries[0]!.claimToken, 'success')]);
    expect(applied).toEqual([
      { deliveryId: due.id, endpointId: ep.id, outcome: 'success', attemptNumber: 1, endpointDisabledReason: null },
    ]);
    const done = await row(due.id);
    expect(done).toMatchObject({
      status: 'success',
      attempts: 1,
      claimToken: null,
      nextRetryAt: null,
      responseCode: 200,
      errorMessage: null,
    });
    expect(done.deliveredAt).toBeInstanceOf(Date);
    expect(done.attemptsLog).toMatchObject([{ attemptNumber: 1, responseCode: 200, responseBody: 'body', durationMs: 12 }]);
    expect((await row(later.id)).claimToken).toBeNull();
  });

  it('claims only the given ids on the fast path, and only while pending and due', async () => {
    const ep = await endpoint();
    const a = await pending(ep.id);
    const b = await pending(ep.id);
    const notDue = await pending(ep.id, 60_000);
    const result = await queue.claimDeliveries([a.id, notDue.id], options());
    expect(result.deliveries.map((d) => d.id)).toEqual([a.id]);
    expect((await queue.claimDeliveries([a.id], options())).deliveries).toEqual([]);
    expect((await row(b.id)).claimToken).toBeNull();
  });

  it('respects the global limit and the per-endpoint limit, counting what is already in flight', async () => {
    const busy = await endpoint();
    const quiet = await endpoint();
    for (let i = 0; i < 20; i++) await pending(busy.id, -60_000 + i);
    for (let i = 0; i < 3; i++) await pending(quiet.id, -1_000 + i);

    const first = await queue.claimDueDeliveries(options({ perEndpointLimit: 4, inFlightByEndpoint: new Map([[busy.id, 1]]) }));
    const byEndpoint = (ids: typeof first.deliveries) =>
      ids.reduce((m, d) => m.set(d.endpointId, (m.get(d.endpointId) ?? 0) + 1), new Map<string, number>());
    // The busy endpoint already has 1 in flight: 3 more; the quiet one gets all of its 3.
    expect(byEndpoint(first.deliveries)).toEqual(
      new Map([
        [busy.id, 3],
        [quiet.id, 3],
      ]),
    );
    expect(first.mayHaveMore).toBe(true);

    // Saturated endpoints are skipped entirely.
    const none = await queue.claimDueDeliveries(options({ perEndpointLimit: 4, inFlightByEndpoint: new Map([[busy.id, 4]]) }));
    expect(none.deliveries).toEqual([]);
    expect(none.mayHaveMore).toBe(true);

    const limited = await queue.claimDueDeliveries(options({ limit: 2 }));
    expect(limited.deliveries).toHaveLength(2);
    expect(limited.mayHaveMore).toBe(true);
  });

  it('cancels, instead of claiming, due rows of disabled endpoints', async () => {
    const off = await endpoint({ isActive: false });
    const on = await endpoint();
    const offRow = await pending(off.id);
    const onRow = await pending(on.id);
    const result = await queue.claimDueDeliveries(options());
    expect(result.deliveries.map((d) => d.id)).toEqual([onRow.id]);
    expect(result.cancelled).toBe(1);
    expect(await row(offRow.id)).toMatchObject({
      status: 'cancelled',
      nextRetryAt: null,
      errorMessage: 'endpoint disabled before the attempt',
    });
  });

  it('applies mixed results in one statement: retry, failed, success, and counts consecutive failures in order', async () => {
    const ep = await endpoint({ consecutiveFailures: 3 });
    const [r0, r1, r2, r3] = [await pending(ep.id), await pending(ep.id), await pending(ep.id), await pending(ep.id)] as const;
    const { deliveries } = await queue.claimDueDeliveries(options());
    const token = deliveries[0]!.claimToken;
    const applied = await queue.completeAttempts([
      record(r0, token, 'failed'),
      record(r1, token, 'success'),
      record(r2, token, 'retry', { delayMs: 5_000 }),
      record(r3, token, 'failed'),
    ]);
    expect(applied).toHaveLength(4);
    expect(await row(r0.id)).toMatchObject({ status: 'failed', attempts: 1, nextRetryAt: null, errorMessage: 'HTTP 500' });
    expect((await row(r1.id)).status).toBe('success');
    const retry = await row(r2.id);
    expect(retry).toMatchObject({ status: 'pending', attempts: 1, claimToken: null });
    expect(retry.nextRetryAt!.getTime() - Date.now()).toBeGreaterThan(4_000);
    expect(retry.nextRetryAt!.getTime() - Date.now()).toBeLessThan(6_000);
    // The success reset the count; only the failure after it counts. Retries do not count.
    expect((await db.prisma.webhookEndpoint.findUniqueOrThrow({ where: { id: ep.id } })).consecutiveFailures).toBe(1);
    expect(await queue.nextDueInMs()).toBeGreaterThan(3_000);
  });

  it(`disables an endpoint at ${AUTO_DISABLE_AFTER_CONSECUTIVE_FAILURES} consecutive failures and cancels its waiting rows`, async () => {
    const ep = await endpoint({ consecutiveFailures: AUTO_DISABLE_AFTER_CONSECUTIVE_FAILURES - 2 });
    const a = await pending(ep.id);
    const b = await pending(ep.id);
    const waiting = await pending(ep.id, 60_000);
    const { deliveries } = await queue.claimDueDeliveries(options());
    const token = deliveries[0]!.claimToken;
    const applied = await queue.completeAttempts([record(a, token, 'failed'), record(b, token, 'failed')]);
    expect(applied.map((r) => r.endpointDisabledReason)).toEqual([
      `${AUTO_DISABLE_AFTER_CONSECUTIVE_FAILURES} consecutive deliveries failed`,
      `${AUTO_DISABLE_AFTER_CONSECUTIVE_FAILURES} consecutive deliveries failed`,
    ]);
    expect(await db.prisma.webhookEndpoint.findUniqueOrThrow({ where: { id: ep.id } })).toMatchObject({
      isActive: false,
      consecutiveFailures: AUTO_DISABLE_AFTER_CONSECUTIVE_FAILURES,
    });
    expect((await row(waiting.id)).status).toBe('cancelled');
  });

  it('disables at once on gone, keeping rows another worker holds for their own result', async () => {
    const ep = await endpoint();
    const a = await pending(ep.id);
    const heldElsewhere = await pending(ep.id, 60_000, { claimToken: randomUUID() });
    const { deliveries } = await queue.claimDueDeliveries(options());
    await queue.completeAttempts([record(a, deliveries[0]!.claimToken, 'gone')]);
    expect(await db.prisma.webhookEndpoint.findUniqueOrThrow({ where: { id: ep.id } })).toMatchObject({
      isActive: false,
      disabledReason: 'endpoint returned 410 Gone',
    });
    expect(await row(a.id)).toMatchObject({ status: 'failed', responseCode: 410 });
    expect((await row(heldElsewhere.id)).status).toBe('pending');
  });

  it('has no next due time while nothing is pending, so an idle worker sleeps', async () => {
    expect(await queue.nextDueInMs()).toBeUndefined();
    const ep = await endpoint();
    await pending(ep.id, 60_000);
    expect(await queue.nextDueInMs()).toBeGreaterThan(50_000);
  });

  it('releases claims: due now, unclaimed', async () => {
    const ep = await endpoint();
    const a = await pending(ep.id);
    const { deliveries } = await queue.claimDueDeliveries(options());
    expect(await queue.releaseClaims([deliveries[0]!.claimToken])).toBe(1);
    const released = await row(a.id);
    expect(released).toMatchObject({ status: 'pending', claimToken: null });
    expect(released.nextRetryAt!.getTime()).toBeLessThanOrEqual(Date.now() + 1_000);
    expect(await queue.nextDueInMs()).toBe(0);
    expect(await queue.countDue()).toBe(1);
  });

  it('gives back particular claimed rows only while their token still claims them', async () => {
    const ep = await endpoint();
    const a = await pending(ep.id);
    const b = await pending(ep.id);
    const { deliveries } = await queue.claimDueDeliveries(options());
    const claimA = deliveries.find((d) => d.id === a.id)!;
    expect(await queue.releaseDeliveries([claimA, { id: b.id, endpointId: ep.id, claimToken: randomUUID() }])).toBe(1);
    expect(await row(a.id)).toMatchObject({ status: 'pending', claimToken: null });
    expect((await row(b.id)).claimToken).toBe(claimA.claimToken);
  });

  it('makes a finished delivery due again, but leaves one in flight alone', async () => {
    const ep = await endpoint();
    const failed = await pending(ep.id, 0, { status: 'failed' });
    expect(await queue.makeDue(ep.id, failed.id, 25)).toEqual({ found: true, scheduled: true, attemptLimitReached: false });
    expect(await row(failed.id)).toMatchObject({ status: 'pending', claimToken: null });
    await queue.claimDueDeliveries(options());
    expect(await queue.makeDue(ep.id, failed.id, 25)).toEqual({ found: true, scheduled: false, attemptLimitReached: false });
    expect(await queue.makeDue(randomUUID(), failed.id, 25)).toEqual({ found: false, scheduled: false, attemptLimitReached: false });
  });

  it('logs what each attempt signed, as the worker reported it, in the same statement', async () => {
    const ep = await endpoint();
    const [signed, unsigned] = [await pending(ep.id), await pending(ep.id)];
    const { deliveries } = await queue.claimDueDeliveries(options());
    const token = deliveries[0]!.claimToken;
    // A timestamp past 2038 (beyond 32-bit seconds) and a receiver clock with milliseconds.
    const parts = { timestamp: 4_102_444_800, bodyBytes: 1_234, bodySha256: 'ab'.repeat(32), fingerprints: ['0123abcd', 'fedc9876'] };
    const responseDate = new Date('2100-01-01T00:10:00.000Z');
    await queue.completeAttempts([
      record(signed, token, 'failed', { responseCode: 401, signed: parts, responseDate }),
      record(unsigned, token, 'failed', { responseCode: null, error: 'could not sign the request' }),
    ]);
    expect((await row(signed.id)).attemptsLog).toMatchObject([
      {
        signatureTimestamp: 4_102_444_800n,
        bodyBytes: 1_234,
        bodySha256: 'ab'.repeat(32),
        signedWith: ['0123abcd', 'fedc9876'],
        responseDate,
      },
    ]);
    expect((await row(unsigned.id)).attemptsLog).toMatchObject([
      { signatureTimestamp: null, bodyBytes: null, bodySha256: null, signedWith: [], responseDate: null },
    ]);
  });

  it('forgets previous secrets that stopped signing before the cutoff, and only those', async () => {
    const cutoff = new Date(Date.now() - 7 * 86_400_000);
    const withPrevious = (expiresAt: Date) =>
      db.prisma.webhookEndpoint.create({
        data: {
          userId,
          url: `https://example.com/${++urlCounter}`,
          secretEncrypted: 'sealed',
          previousSecretEncrypted: 'sealed-previous',
          previousSecretExpiresAt: expiresAt,
          events: [],
        },
      });
    const long = await withPrevious(new Date(cutoff.getTime() - 60_000));
    const recent = await withPrevious(new Date(cutoff.getTime() + 60_000));
    const active = await withPrevious(new Date(Date.now() + 3_600_000));
    const none = await endpoint();
    expect(await queue.forgetExpiredPreviousSecrets(cutoff)).toBe(1);
    const after = async (id: string) => db.prisma.webhookEndpoint.findUniqueOrThrow({ where: { id } });
    expect(await after(long.id)).toMatchObject({ secretEncrypted: 'sealed', previousSecretEncrypted: null, previousSecretExpiresAt: null });
    for (const kept of [recent, active]) expect((await after(kept.id)).previousSecretEncrypted).toBe('sealed-previous');
    expect((await after(none.id)).previousSecretEncrypted).toBeNull();
    expect(await queue.forgetExpiredPreviousSecrets(cutoff)).toBe(0);
  });

  it('prunes finished deliveries older than the cutoff, in batches, with their attempts', async () => {
    const ep = await endpoint();
    const old = new Date(Date.now() - 40 * 86_400_000);
    const oldDone = [];
    for (let i = 0; i < 5; i++) oldDone.push(await pending(ep.id, 0, { status: 'success', createdAt: old }));
    await insertAttempt(db, { deliveryId: oldDone[0]!.id, attemptNumber: 1, startedAt: old, durationMs: 1 });
    const oldPending = await pending(ep.id, 0, { createdAt: old });
    const recent = await pending(ep.id, 0, { status: 'failed' });
    const cutoff = new Date(Date.now() - 30 * 86_400_000);
    expect(await queue.pruneDeliveries(cutoff, 2)).toBe(2);
    expect(await queue.pruneDeliveries(cutoff, 2)).toBe(2);
    expect(await queue.pruneDeliveries(cutoff, 2)).toBe(1);
    expect(await queue.pruneDeliveries(cutoff, 2)).toBe(0);
    const left = await db.prisma.webhookDelivery.findMany({ where: { endpointId: ep.id } });
    expect(left.map((r) => r.id).sort()).toEqual([oldPending.id, recent.id].sort());
    expect(await db.prisma.webhookDeliveryAttempt.count({ where: { deliveryId: oldDone[0]!.id } })).toBe(0);
  });
});
