import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../src/db/database.ts';
import { DeliveryQueue } from '../../src/webhooks/queue/delivery-queue.ts';
import { generateEndpointSecret, SecretBox } from '../../src/webhooks/secrets.ts';
import { BACKLOG_CLAIM_SPACING_MS } from '../../src/webhooks/delivery/claim-pump.ts';
import { CLAIM_AHEAD, DEFAULT_MAX_IN_FLIGHT_PER_ENDPOINT, type DeliveryWorkerOptions } from '../../src/webhooks/delivery/worker-options.ts';
import type { WorkerLogger } from '../../src/webhooks/delivery/worker-logger.ts';
import { buildTestApp, type TestApp } from '../helpers/app.ts';
import { makeDueNow } from '../helpers/deliveries.ts';
import { fanOutEvent, standaloneWorker } from '../helpers/queue-store.ts';
import { answer, startReceiver, type Receiver } from '../helpers/receiver.ts';
import { createTestStore, type TestStore } from '../helpers/store.ts';
import { signUp, uniqueUsername } from '../helpers/users.ts';
import { waitFor } from '../helpers/wait.ts';
import { createEndpoint } from '../helpers/webhook-api.ts';

describe('delivery worker: fairness', () => {
  let t: TestApp;
  const receivers: Receiver[] = [];
  beforeAll(async () => {
    t = await buildTestApp({ env: { WEBHOOK_MAX_ENDPOINTS_PER_USER: '10' } });
  });
  afterAll(async () => {
    await t?.close();
    await Promise.all(receivers.map((r) => r.close()));
  });

  it('caps each endpoint at its concurrency limit, so a slow receiver does not hold up the others', async () => {
    let concurrent = 0;
    let maxConcurrent = 0;
    const slow = await startReceiver((request, res) => {
      concurrent++;
      maxConcurrent = Math.max(maxConcurrent, concurrent);
      setTimeout(() => {
        concurrent--;
        answer(200)(request, res);
      }, 1000);
    });
    const fast = await startReceiver();
    receivers.push(slow, fast);
    const owner = await signUp(t.app, uniqueUsername('fair'));
    const slowEndpoint = await createEndpoint(t.app, owner, `${slow.origin}/slow`);
    const fastEndpoint = await createEndpoint(t.app, owner, `${fast.origin}/fast`);
    const test = async (id: string) =>
      (await t.app.inject({ method: 'POST', url: `/api/webhooks/${id}/test`, headers: owner.auth })).json().deliveryId;

    for (let i = 0; i < 40; i++) await test(slowEndpoint.id);
    for (let i = 0; i < 5; i++) await test(fastEndpoint.id);
    await waitFor(() => fast.requests.length === 5, { timeoutMs: 10_000, what: 'the fast endpoint' });
    // Delivered while the slow endpoint's backlog still waits (it drains 8 per second at most).
    expect(slow.requests.length).toBeLessThan(40);

    await waitFor(() => slow.requests.length === 40, { timeoutMs: 20_000, what: 'the slow endpoint' });
    expect(maxConcurrent).toBe(DEFAULT_MAX_IN_FLIGHT_PER_ENDPOINT);
  });
});

describe('delivery worker: failures of its own', () => {
  let store: TestStore;
  let db: Database;
  let receiver: Receiver;
  const box = new SecretBox(Buffer.alloc(32, 5));
  beforeAll(async () => {
    store = await createTestStore();
    db = await store.open();
    await db.migrate();
    receiver = await startReceiver();
  });
  afterAll(async () => {
    await db?.close();
    await store?.drop();
    await receiver?.close();
  });

  function recordingLogger() {
    const errors: string[] = [];
    const logger: WorkerLogger = {
      error: (_obj, msg) => errors.push(msg ?? ''),
      warn: () => {},
      info: () => {},
      debug: () => {},
    };
    return { logger, errors };
  }

  /** `count` due deliveries, one event each, to a new user's endpoint at `origin`/`path`. */
  async function dueDeliveries(path: string, count: number, origin = receiver.origin) {
    const user = await db.prisma.user.create({
      data: { email: `${path}@example.com`, username: path, displayName: path, passwordHash: 'x' },
    });
    await db.prisma.webhookEndpoint.create({
      data: {
        userId: user.id,
        url: `${origin}/${path}`,
        secretEncrypted: box.seal(generateEndpointSecret()),
        events: ['card.viewed'],
      },
    });
    const queue = new DeliveryQueue(db.sql);
    const rows = [];
    for (let i = 0; i < count; i++) {
      rows.push(
        ...(await queue.insertForSubscribers({
          ...fanOutEvent('card.viewed', { cardId: null, viewer: null, source: 'link' }),
          userId: user.id,
          notify: false,
        })),
      );
    }
    return rows;
  }

  const dueDelivery = async (path: string) => (await dueDeliveries(path, 1))[0]!;

  const worker = (queue: DeliveryQueue, logger: WorkerLogger, overrides: Partial<DeliveryWorkerOptions> = {}) =>
    standaloneWorker(queue, logger, box, overrides);

  /** A queue that counts the worker's claims of due rows. */
  function claimCounting() {
    const counted = { claims: 0 };
    const queue = new (class extends DeliveryQueue {
      override async claimDueDeliveries(...args: Parameters<DeliveryQueue['claimDueDeliveries']>) {
        counted.claims++;
        return super.claimDueDeliveries(...args);
      }
    })(db.sql);
    return { queue, counted };
  }

  // First in this block: it needs the queue empty.
  it('sleeps while nothing is pending: no claim runs between sweeps', async () => {
    const { queue: counting, counted } = claimCounting();
    const w = worker(counting, recordingLogger().logger, { sweepIntervalMs: 600_000 });
    w.start();
    try {
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      // The sweep at start, and nothing after it (the wake timer's shortest delay is 25 ms).
      expect(counted.claims).toBe(1);
    } finally {
      await w.stop();
    }
  });

  it('claims a backlog in batches, not after every finished attempt', async () => {
    const rows = 300;
    const slow = await startReceiver((request, res) => setTimeout(() => answer(200)(request, res), 30));
    await dueDeliveries('batches', rows, slow.origin);
    const { queue: counting, counted } = claimCounting();
    const w = worker(counting, recordingLogger().logger, { sweepIntervalMs: 600_000 });
    const startedAt = performance.now();
    w.start();
    try {
      await waitFor(() => slow.requests.length === rows, { timeoutMs: 30_000, what: 'the backlog to be sent' });
      const elapsedMs = performance.now() - startedAt;
      // A claim each time the endpoint's held rows fall to half its share, plus at most one per
      // spacing for rows of other endpoints: not one per finished attempt (about 8 per 30 ms).
      const share = CLAIM_AHEAD * DEFAULT_MAX_IN_FLIGHT_PER_ENDPOINT;
      expect(counted.claims).toBeLessThanOrEqual(Math.ceil(rows / (share / 2)) + Math.ceil(elapsedMs / BACKLOG_CLAIM_SPACING_MS) + 2);
    } finally {
      await w.stop();
      await slow.close();
    }
  });

  it('delivers a row due beyond its wake horizon on time, with no sweep to find it', async () => {
    const row = await dueDelivery('beyond-horizon');
    const [{ dueAt: due }] = (await makeDueNow(db, { deliveryId: row.id }, 1_500)) as [{ id: string; dueAt: Date }];
    const { logger } = recordingLogger();
    // The only sweep runs at start, when the row is three horizons away: the wake timer alone brings it.
    const w = worker(new DeliveryQueue(db.sql), logger, { wakeHorizonMs: 500, sweepIntervalMs: 600_000 });
    w.start();
    try {
      const request = await waitFor(() => receiver.requests.find((r) => r.headers['webhook-id'] === row.id), {
        timeoutMs: 10_000,
        what: 'the delivery',
      });
      expect(request.receivedAt).toBeGreaterThanOrEqual(due.getTime());
    } finally {
      await w.stop();
    }
  });

  it('logs a database error in its loop and carries on at the next sweep', async () => {
    const row = await dueDelivery('flaky-db');
    let failures = 2;
    const flaky = new (class extends DeliveryQueue {
      override async claimDueDeliveries(...args: Parameters<DeliveryQueue['claimDueDeliveries']>) {
        if (failures-- > 0) throw new Error('connection terminated unexpectedly');
        return super.claimDueDeliveries(...args);
      }
    })(db.sql);
    const { logger, errors } = recordingLogger();
    const w = worker(flaky, logger);
    w.start();
    try {
      await waitFor(async () => (await db.prisma.webhookDelivery.findUniqueOrThrow({ where: { id: row.id } })).status === 'success');
      expect(errors.filter((e) => e.includes('claiming deliveries failed'))).toHaveLength(2);
      expect(receiver.requests.filter((r) => r.headers['webhook-id'] === row.id)).toHaveLength(1);
    } finally {
      await w.stop();
    }
  });

  it('retries writing results that failed to be written', async () => {
    const row = await dueDelivery('flaky-write');
    let failures = 1;
    const flaky = new (class extends DeliveryQueue {
      override async completeAttempts(...args: Parameters<DeliveryQueue['completeAttempts']>) {
        if (failures-- > 0) throw new Error('deadlock detected');
        return super.completeAttempts(...args);
      }
    })(db.sql);
    const { logger, errors } = recordingLogger();
    const w = worker(flaky, logger);
    w.start();
    try {
      const done = await waitFor(async () => {
        const r = await db.prisma.webhookDelivery.findUniqueOrThrow({ where: { id: row.id } });
        return r.status === 'success' ? r : undefined;
      });
      expect(done.attempts).toBe(1);
      expect(errors.some((e) => e.includes('writing attempt results failed'))).toBe(true);
    } finally {
      await w.stop();
    }
  });

  it('on stop, waits a bounded time for attempts in flight, then hands their rows back', async () => {
    const row = await dueDelivery('stop-hang');
    receiver.handle((request, res) => {
      if (request.path === '/stop-hang') return; // hangs until the sender gives up
      answer(200)(request, res);
    });
    const { logger } = recordingLogger();
    const w = worker(new DeliveryQueue(db.sql), logger, { stopTimeoutMs: 100, timeoutMs: 1000 });
    w.start();
    await waitFor(() => receiver.at('/stop-hang').length === 1);
    expect(w.inFlight).toBe(1);
    const started = Date.now();
    await w.stop();
    expect(Date.now() - started).toBeLessThan(2000);
    const released = await db.prisma.webhookDelivery.findUniqueOrThrow({ where: { id: row.id } });
    expect(released).toMatchObject({ status: 'pending', attempts: 0, claimToken: null });
    expect(released.nextRetryAt!.getTime()).toBeLessThanOrEqual(Date.now() + 1000);
    receiver.handle(answer(200));
  });
});
