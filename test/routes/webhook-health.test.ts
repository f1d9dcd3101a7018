import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestApp } from '../helpers/app.ts';
import { insertAttempt, insertDelivery } from '../helpers/deliveries.ts';
import { logFinished, type PastAttempt } from '../helpers/delivery-history.ts';
import { asUser, signUp, type Session } from '../helpers/users.ts';
import { buildWebhookTestApp, createEndpoint } from '../helpers/webhook-api.ts';

/**
 * GET /api/webhooks/:id/health against deliveries written at known hours: each bucket equals
 * what this file computes from the deliveries it wrote (not from the database).
 */

const HOUR = 3_600_000;

type Outcome = 'success' | 'failed' | 'cancelled' | 'pending';

interface Seeded {
  createdAt: Date;
  outcome: Outcome;
  attempts: PastAttempt[];
}

interface Bucket {
  start: string;
  success: number;
  failed: number;
  cancelled: number;
  pending: number;
  p50Ms: number | null;
  p95Ms: number | null;
}

/** Nearest rank: the smallest duration at least `p` of them do not exceed. */
function percentile(sorted: number[], p: number): number | null {
  return sorted.length === 0 ? null : sorted[Math.ceil(p * sorted.length) - 1]!;
}

/** The buckets the route must answer for `seeded`, in the window [from, to) it reports. */
function expectedBuckets(seeded: Seeded[], from: number, to: number): Bucket[] {
  const hours = (to - from) / HOUR;
  const inWindow = seeded.filter((d) => d.createdAt.getTime() >= from && d.createdAt.getTime() < to);
  return Array.from({ length: hours }, (_, i) => {
    const start = from + i * HOUR;
    const inHour = (at: Date) => at.getTime() >= start && at.getTime() < start + HOUR;
    const created = inWindow.filter((d) => inHour(d.createdAt));
    const durations = inWindow
      .flatMap((d) => d.attempts)
      .filter((a) => inHour(a.startedAt))
      .map((a) => a.durationMs)
      .sort((a, b) => a - b);
    const countOf = (outcome: Outcome) => created.filter((d) => d.outcome === outcome).length;
    return {
      start: new Date(start).toISOString(),
      success: countOf('success'),
      failed: countOf('failed'),
      cancelled: countOf('cancelled'),
      pending: countOf('pending'),
      p50Ms: percentile(durations, 0.5),
      p95Ms: percentile(durations, 0.95),
    };
  });
}

describe('GET /api/webhooks/:id/health', () => {
  let t: TestApp;
  let alice: Session;
  let bob: Session;
  let endpointId: string;
  const seeded: Seeded[] = [];

  /** `minutes` into the hour that began `hoursAgo` whole hours before the current one, never in the future. */
  const at = (hoursAgo: number, minutes: number) => {
    const hourStart = Math.floor(Date.now() / HOUR) * HOUR - hoursAgo * HOUR;
    return new Date(Math.min(hourStart + minutes * 60_000, Date.now() - 5_000));
  };
  const attempt = (createdAt: Date, afterSeconds: number, durationMs: number, responseCode: number | null = 500): PastAttempt => ({
    startedAt: new Date(createdAt.getTime() + afterSeconds * 1_000),
    durationMs,
    responseCode,
  });

  async function finished(endpoint: string, outcome: 'success' | 'failed' | 'cancelled', createdAt: Date, attempts: PastAttempt[]) {
    await logFinished(t.db, { endpointId: endpoint, createdAt, status: outcome, attempts });
    if (endpoint === endpointId) seeded.push({ createdAt, outcome, attempts });
  }

  async function pending(endpoint: string, createdAt: Date, attempts: PastAttempt[]) {
    const row = await insertDelivery(t.db, {
      endpointId: endpoint,
      createdAt,
      attempts: attempts.length,
      nextRetryAt: new Date(Date.now() + HOUR),
    });
    for (const [i, a] of attempts.entries()) {
      await insertAttempt(t.db, { deliveryId: row.id, attemptNumber: i + 1, startedAt: a.startedAt, durationMs: a.durationMs });
    }
    if (endpoint === endpointId) seeded.push({ createdAt, outcome: 'pending', attempts });
  }

  beforeAll(async () => {
    t = await buildWebhookTestApp();
    alice = await signUp(t.app);
    bob = await signUp(t.app);
    endpointId = (await createEndpoint(t.app, alice, 'https://hooks.example.com/health')).id;
    const otherId = (await createEndpoint(t.app, alice, 'https://hooks.example.com/other')).id;
    const bobsId = (await createEndpoint(t.app, bob, 'https://hooks.example.com/bob')).id;

    // Three hours ago: an outage. Two successes, a delivery that failed after three slow attempts, a cancelled one.
    const outage = at(3, 10);
    await finished(endpointId, 'success', outage, [attempt(outage, 0, 10, 200)]);
    await finished(endpointId, 'success', at(3, 20), [attempt(at(3, 20), 0, 500, 503), attempt(at(3, 20), 30, 30, 200)]);
    await finished(endpointId, 'failed', at(3, 30), [attempt(at(3, 30), 0, 100), attempt(at(3, 30), 30, 200), attempt(at(3, 30), 60, 300)]);
    await finished(endpointId, 'cancelled', at(3, 40), []);
    // An hour ago: two still pending, one of them retried.
    await pending(endpointId, at(1, 5), []);
    await pending(endpointId, at(1, 15), [attempt(at(1, 15), 0, 50)]);
    // This hour: one failure.
    await finished(endpointId, 'failed', at(0, 0), [attempt(at(0, 0), 0, 1_000, null)]);
    // Thirty hours ago (only in the 7-day window), and eight days ago (in neither).
    await finished(endpointId, 'success', at(30, 10), [attempt(at(30, 10), 0, 40, 200)]);
    await finished(endpointId, 'failed', at(8 * 24, 10), [attempt(at(8 * 24, 10), 0, 60)]);
    // The same hours on another endpoint of hers, and on Bob's: never counted.
    for (const other of [otherId, bobsId]) {
      await finished(other, 'failed', outage, [attempt(outage, 0, 9_999)]);
      await pending(other, at(1, 5), []);
    }
  });
  afterAll(async () => t.close());

  const health = (user: Session | undefined, id: string, query = '') =>
    asUser(t.app, user, { method: 'GET', url: `/api/webhooks/${id}/health${query}` });

  it.each([
    ['', '24h', 24],
    ['?window=24h', '24h', 24],
    ['?window=7d', '7d', 168],
  ])('answers %s with one bucket per hour of the %s window, each as computed from the deliveries written', async (query, window, hours) => {
    const before = Date.now();
    const res = await health(alice, endpointId, query);
    expect(res.statusCode, res.body).toBe(200);
    const body = res.json();
    const from = Date.parse(body.from);
    const to = Date.parse(body.to);
    expect(body.window).toBe(window);
    expect(to - from).toBe(hours * HOUR);
    expect(to % HOUR).toBe(0);
    // The last hour is the current one.
    expect(to).toBeGreaterThan(before);
    expect(to - HOUR).toBeLessThanOrEqual(Date.now());
    expect(body.buckets).toEqual(expectedBuckets(seeded, from, to));
  });

  it('counts what it was given: the outage hour, the pending hour and the thirty-hour-old success', async () => {
    const day = (await health(alice, endpointId)).json();
    const week = (await health(alice, endpointId, '?window=7d')).json();
    const total = (buckets: Bucket[], key: Outcome) => buckets.reduce((sum, b) => sum + b[key], 0);
    // Every seeded delivery of the last 24 hours but the one from 30 hours ago, and not the 8-day-old one.
    expect([
      total(day.buckets, 'success'),
      total(day.buckets, 'failed'),
      total(day.buckets, 'cancelled'),
      total(day.buckets, 'pending'),
    ]).toEqual([2, 2, 1, 2]);
    expect(total(week.buckets, 'success')).toBe(3);
    const outage = day.buckets.find((b: Bucket) => b.failed === 1 && b.success === 2)!;
    // Attempts 10, 500, 30, 100, 200, 300 ms: median 100, 95th percentile 500.
    expect(outage).toMatchObject({ cancelled: 1, p50Ms: 100, p95Ms: 500 });
  });

  it('refuses an unknown window with 400, and another user or a missing endpoint with 404', async () => {
    for (const query of ['?window=30d', '?window=', '?window=24H']) {
      const res = await health(alice, endpointId, query);
      expect(res.statusCode, query).toBe(400);
      expect(res.json().error).toMatchObject({ code: 'VALIDATION_ERROR', message: expect.stringMatching(/^querystring\.window: /) });
    }
    for (const id of [endpointId, randomUUID(), 'nope']) {
      const res = await health(bob, id);
      expect(res.statusCode, id).toBe(404);
      expect(res.json().error.code).toBe('NOT_FOUND');
    }
    expect((await health(undefined, endpointId)).statusCode).toBe(401);
  });
});
