import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DeliveryQueue } from '../../src/webhooks/queue/delivery-queue.ts';
import type { AttemptRecord } from '../../src/webhooks/queue/types.ts';
import { generateEndpointSecret, SecretBox } from '../../src/webhooks/secrets.ts';
import { UNRECORDABLE_RESULT_ERROR } from '../../src/webhooks/delivery/receiver-values.ts';
import type { WorkerLogger } from '../../src/webhooks/delivery/worker-logger.ts';
import { buildTestApp, type TestApp } from '../helpers/app.ts';
import { fanOutEvent, openQueueStore, standaloneWorker, type QueueStore } from '../helpers/queue-store.ts';
import { answer, startReceiver, type Receiver } from '../helpers/receiver.ts';
import { signUp, uniqueUsername, type Session } from '../helpers/users.ts';
import { sleep, waitFor } from '../helpers/wait.ts';
import { createEndpoint } from '../helpers/webhook-api.ts';

/** Where attempts are written: a finished delivery's last one on its log row, the others as earlier attempts. */
const ATTEMPT_TABLES = ['webhook_delivery_log', 'webhook_earlier_attempts'];

/**
 * Makes attempt rows fail: those whose response body is 'poison' are refused for their data
 * (as a value the database cannot take would be), or every insert fails the way an outage does.
 */
async function refuseAttemptRows(exec: (sql: string) => Promise<void>, which: 'poisoned' | 'outage'): Promise<void> {
  const [condition, errcode] = which === 'outage' ? ['true', 'cannot_connect_now'] : ["NEW.response_body = 'poison'", 'data_exception'];
  await exec(`
    CREATE OR REPLACE FUNCTION reject_poisoned_attempt() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF ${condition} THEN RAISE EXCEPTION 'attempt row refused' USING ERRCODE = '${errcode}'; END IF;
      RETURN NEW;
    END $$;
    ${ATTEMPT_TABLES.map((table) => `CREATE OR REPLACE TRIGGER reject_poisoned_attempt BEFORE INSERT ON ${table} FOR EACH ROW EXECUTE FUNCTION reject_poisoned_attempt();`).join('\n')}
  `);
}
/**
 * Refusal ends by making the trigger function accept every row: dropping the triggers locks both
 * tables, one after the other, while the worker's result write holds them (a deadlock).
 */
const REFUSAL_OFF = `CREATE OR REPLACE FUNCTION reject_poisoned_attempt() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;`;

/**
 * The worker writes results in batches: what one receiver answers must never keep another
 * tenant's results from being written (issue 11).
 */
describe('delivery engine: one receiver cannot stop the result writes of others', { timeout: 30_000 }, () => {
  let t: TestApp;
  let hostile: Receiver;
  let healthy: Receiver;

  beforeAll(async () => {
    t = await buildTestApp({ env: { WEBHOOK_SWEEP_INTERVAL_MS: '200' } });
    hostile = await startReceiver();
    healthy = await startReceiver();
  });
  afterAll(async () => {
    await t?.close();
    await hostile?.close();
    await healthy?.close();
  });
  afterEach(async () => {
    await t.db.sql.exec(REFUSAL_OFF);
  });

  async function tenant(name: string, receiver: Receiver): Promise<{ owner: Session; endpointId: string }> {
    const owner = await signUp(t.app, uniqueUsername(name));
    const { id } = await createEndpoint(t.app, owner, `${receiver.origin}/${name}`);
    return { owner, endpointId: id };
  }

  async function sendTest({ owner, endpointId }: { owner: Session; endpointId: string }): Promise<string> {
    const res = await t.app.inject({ method: 'POST', url: `/api/webhooks/${endpointId}/test`, headers: owner.auth });
    expect(res.statusCode).toBe(202);
    return res.json().deliveryId;
  }

  async function deliveryOf({ owner, endpointId }: { owner: Session; endpointId: string }, deliveryId: string) {
    const res = await t.app.inject({ method: 'GET', url: `/api/webhooks/${endpointId}/deliveries/${deliveryId}`, headers: owner.auth });
    expect(res.statusCode).toBe(200);
    return res.json();
  }

  it('a receiver answering with a Date in the year 10000 is recorded, and the next tenant too', async () => {
    hostile.handle(answer(200, 'ok', { date: 'Sat, 01 Jan 10000 00:00:00 GMT' }));
    const a = await tenant('datea', hostile);
    const b = await tenant('dateb', healthy);

    const aDelivery = await sendTest(a);
    await waitFor(() => hostile.requests.length > 0, { what: 'the hostile receiver to be called' });
    const bDelivery = await sendTest(b);

    const bDone = await waitFor(async () => ((await deliveryOf(b, bDelivery)).status === 'success' ? true : undefined), {
      timeoutMs: 5_000,
      what: "the healthy tenant's delivery to be recorded",
    });
    expect(bDone).toBe(true);
    // The impossible Date is treated as absent: the attempt itself is a plain success.
    const aDetail = await deliveryOf(a, aDelivery);
    expect(aDetail.status).toBe('success');
    expect(aDetail.attempts[0]).toMatchObject({ responseCode: 200, responseBody: 'ok', error: null });
  });

  it('a result the database refuses is recorded as an error attempt and retried; the other tenant is served', async () => {
    // A result row that still fails however it is sanitised: the database refuses this body.
    await refuseAttemptRows((sql) => t.db.sql.exec(sql), 'poisoned');
    hostile.handle(answer(200, 'poison'));
    const a = await tenant('poisona', hostile);
    const b = await tenant('poisonb', healthy);

    const aDelivery = await sendTest(a);
    const bDelivery = await sendTest(b);

    await waitFor(async () => ((await deliveryOf(b, bDelivery)).status === 'success' ? true : undefined), {
      timeoutMs: 5_000,
      what: "the healthy tenant's delivery to be recorded",
    });
    // Every attempt of the poisoned delivery is recorded without what the receiver sent, as a
    // failure, so the delivery goes through its retries (200ms,400ms,800ms) and ends failed.
    const aDetail = await waitFor(
      async () => {
        const detail = await deliveryOf(a, aDelivery);
        return detail.status === 'failed' ? detail : undefined;
      },
      { timeoutMs: 10_000, what: 'the poisoned delivery to end failed' },
    );
    expect(aDetail.attempts).toHaveLength(4);
    for (const attempt of aDetail.attempts) {
      expect(attempt).toMatchObject({ responseCode: null, responseBody: null });
      expect(attempt.error).toMatch(/could not be recorded/);
    }
  });
});

describe('delivery worker: result writes', { timeout: 30_000 }, () => {
  let qs: QueueStore;
  let receiver: Receiver;
  const box = new SecretBox(Buffer.alloc(32, 5));
  const quiet: WorkerLogger = { error: () => {}, warn: () => {}, info: () => {}, debug: () => {} };
  beforeAll(async () => {
    qs = await openQueueStore('result-writes');
    receiver = await startReceiver();
  });
  afterAll(async () => {
    await qs?.close();
    await receiver?.close();
  });

  afterEach(async () => {
    await qs.db.sql.exec(REFUSAL_OFF);
  });

  /** An endpoint of a user of its own (so events go to it alone) with `deliveries` rows due now. */
  async function endpointWithDeliveries(path: string, deliveries: number): Promise<string> {
    const user = await qs.db.prisma.user.create({
      data: { email: `${path}@example.com`, username: path, displayName: path, passwordHash: 'x' },
    });
    const endpoint = await qs.db.prisma.webhookEndpoint.create({
      data: {
        userId: user.id,
        url: `${receiver.origin}/${path}`,
        secretEncrypted: box.seal(generateEndpointSecret()),
        events: ['card.viewed'],
      },
    });
    for (let i = 0; i < deliveries; i++) {
      await qs.queue.insertForSubscribers({
        ...fanOutEvent('card.viewed', { cardId: null, viewer: null, source: 'link' }),
        userId: user.id,
        notify: false,
      });
    }
    return endpoint.id;
  }

  it('writes the other results of a batch the database refuses for one row, and that row as a failed attempt', async () => {
    const DELIVERIES = 30;
    const endpointId = await endpointWithDeliveries('batch', DELIVERIES);
    const poisoned = (await qs.db.prisma.webhookDelivery.findFirstOrThrow({ where: { endpointId } })).id;
    // Answers go out in groups as large as the worker's window for the endpoint, so the results of
    // a group finish together and share a write, whatever the machine's load.
    const GROUP = 6;
    const held: Array<() => void> = [];
    receiver.handle((request, res) => {
      held.push(() => {
        res.writeHead(200);
        res.end(request.headers['x-devcard-delivery'] === poisoned ? 'poison' : 'ok');
      });
      if (held.length === GROUP) for (const answer of held.splice(0)) answer();
    });
    await refuseAttemptRows((sql) => qs.db.sql.exec(sql), 'poisoned');
    // Watches the batches the worker writes, to check the poisoned row shared one with others.
    const batches: AttemptRecord[][] = [];
    const watched = new (class extends DeliveryQueue {
      override completeAttempts(records: readonly AttemptRecord[]) {
        batches.push([...records]);
        return super.completeAttempts(records);
      }
    })(qs.db.sql);
    const worker = standaloneWorker(watched, quiet, box, { retryScheduleMs: [60_000], maxInFlightPerEndpoint: GROUP, timeoutMs: 10_000 });
    worker.start();
    try {
      const rows = await waitFor(
        async () => {
          const all = await qs.db.prisma.webhookDelivery.findMany({ where: { endpointId }, include: { attemptsLog: true } });
          return all.every((d) => d.attempts === 1) ? all : undefined;
        },
        { what: 'every delivery to have its attempt recorded' },
      );
      expect(batches.some((batch) => batch.length > 1 && batch.some((r) => r.deliveryId === poisoned))).toBe(true);
      for (const row of rows) {
        if (row.id === poisoned) {
          expect(row.status).toBe('pending');
          expect(row.attemptsLog[0]).toMatchObject({ responseCode: null, responseBody: null, error: UNRECORDABLE_RESULT_ERROR });
        } else {
          expect(row.status).toBe('success');
          expect(row.attemptsLog[0]).toMatchObject({ responseCode: 200, responseBody: 'ok', error: null });
        }
      }
    } finally {
      await worker.stop();
    }
  });

  it('starts no attempt while its unwritten results are at the bound, and writes them all once the database takes them', async () => {
    const DELIVERIES = 40;
    const BOUND = 5;
    const IN_FLIGHT = 2;
    receiver.handle(answer(200));
    const endpointId = await endpointWithDeliveries('bounded', DELIVERIES);
    const before = receiver.requests.length;
    // The database is failing for result writes: none can be written, not even as an error attempt.
    await refuseAttemptRows((sql) => qs.db.sql.exec(sql), 'outage');
    const worker = standaloneWorker(qs.queue, quiet, box, { maxUnwrittenResults: BOUND, maxInFlight: IN_FLIGHT });
    worker.start();
    try {
      const sent = () => receiver.requests.length - before;
      await waitFor(() => sent() >= BOUND, { what: 'the first attempts' });
      // Several failed write rounds (one a second) later, no more attempts were started.
      await sleep(2_500);
      expect(sent()).toBeLessThanOrEqual(BOUND + IN_FLIGHT);
      expect(await qs.db.prisma.webhookDeliveryAttempt.count({ where: { delivery: { endpointId } } })).toBe(0);

      await qs.db.sql.exec(REFUSAL_OFF);
      await waitFor(async () => (await qs.db.prisma.webhookDelivery.count({ where: { endpointId, status: 'success' } })) === DELIVERIES, {
        timeoutMs: 15_000,
        what: 'every delivery to be written',
      });
      // The results kept through the outage were written as they were: one successful attempt each.
      expect(sent()).toBe(DELIVERIES);
      const attempts = await qs.db.prisma.webhookDeliveryAttempt.findMany({ where: { delivery: { endpointId } } });
      expect(attempts).toHaveLength(DELIVERIES);
      expect(attempts.every((a) => a.responseCode === 200 && a.error === null)).toBe(true);
    } finally {
      await worker.stop();
    }
  });
});
