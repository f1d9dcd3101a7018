import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { buildTestApp, TEST_ENV, type TestApp } from '../helpers/app.ts';
import { answer, gatedReceiver, startReceiver, type ReceivedRequest, type Receiver } from '../helpers/receiver.ts';
import { signUp, uniqueUsername } from '../helpers/users.ts';
import { sleep, waitFor } from '../helpers/wait.ts';
import { createEndpoint } from '../helpers/webhook-api.ts';
import { makeDueNow } from '../helpers/deliveries.ts';
import { DEFAULT_MAX_IN_FLIGHT_PER_ENDPOINT } from '../../src/webhooks/delivery/worker-options.ts';
import { createTestStore, type TestStore } from '../helpers/store.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** How many times each webhook-id was received. */
function countById(requests: readonly ReceivedRequest[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const request of requests) {
    const id = String(request.headers['webhook-id']);
    counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  return counts;
}

function metricValue(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? Number.NaN : Number(line.slice(series.length + 1));
}

// Several processes sharing one queue needs a real server: PGlite is one process's embedded store.
describe.skipIf(!process.env.DATABASE_URL)('delivery engine: several processes on one PostgreSQL', { timeout: 90_000 }, () => {
  const cleanups: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => {});
  });

  async function sharedStore(): Promise<TestStore> {
    const store = await createTestStore();
    cleanups.push(() => store.drop());
    return store;
  }
  async function app(store: TestStore, env: Record<string, string> = {}): Promise<TestApp> {
    const t = await buildTestApp({ store, env });
    cleanups.push(() => t.close({ keepStore: true }));
    return t;
  }
  async function receiverAnswering(handler = answer(200)): Promise<Receiver> {
    const r = await startReceiver(handler);
    cleanups.push(() => r.close());
    return r;
  }
  function workerProcess(store: TestStore, env: Record<string, string> = {}): ChildProcess {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/worker.ts'], {
      cwd: ROOT,
      env: { ...process.env, ...TEST_ENV, ...store.env, LOG_LEVEL: 'warn', WEBHOOK_SWEEP_INTERVAL_MS: '200', ...env },
      stdio: ['ignore', env.LOG_LEVEL ? 'pipe' : 'inherit', 'inherit'],
    });
    cleanups.push(async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await once(child, 'exit');
      }
    });
    return child;
  }

  it('two app instances deliver 2,000 events to one endpoint: every delivery once, none twice', async () => {
    const store = await sharedStore();
    const receiver = await receiverAnswering();
    const a = await app(store);
    const b = await app(store);
    const owner = await signUp(a.app, uniqueUsername('busy'));
    const endpoint = await createEndpoint(a.app, owner, `${receiver.origin}/busy`, ['card.viewed']);

    const total = 2000;
    const ids = new Set<string>();
    for (let start = 0; start < total; start += 100) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(100, total - start) }, (_, i) =>
          (i % 2 === 0 ? a : b).app.webhooks.dispatch(owner.id, 'card.viewed', {
            userId: owner.id,
            cardId: null,
            viewer: null,
            source: 'link',
          }),
        ),
      );
      for (const result of batch) for (const d of result.deliveries) ids.add(d.id);
    }
    expect(ids.size).toBe(total);

    await waitFor(
      async () => (await a.db.prisma.webhookDelivery.count({ where: { endpointId: endpoint.id, status: 'success' } })) === total,
      {
        timeoutMs: 30_000,
        what: 'all deliveries to succeed',
      },
    );
    const counts = countById(receiver.requests);
    expect(new Set(counts.keys())).toEqual(ids);
    expect([...counts.values()].filter((n) => n > 1)).toEqual([]);
    expect(receiver.requests).toHaveLength(total);
    expect(await a.db.prisma.webhookDeliveryAttempt.count()).toBe(total);

    // Both instances delivered a share.
    const successes = await Promise.all(
      [a, b].map(async (t) =>
        metricValue((await t.app.inject({ method: 'GET', url: '/metrics' })).body, 'webhook_deliveries_total{outcome="success"}'),
      ),
    );
    expect(successes[0]! + successes[1]!).toBe(total);
    expect(Math.min(...successes)).toBeGreaterThan(0);
  });

  it('a worker process hears about new deliveries at once (LISTEN/NOTIFY), not at its next sweep', async () => {
    const store = await sharedStore();
    const receiver = await receiverAnswering();
    const api = await app(store, { WEBHOOK_WORKER: 'off' });
    const owner = await signUp(api.app, uniqueUsername('notified'));
    await createEndpoint(api.app, owner, `${receiver.origin}/notified`, ['card.viewed']);

    // A sweep a minute away: only the notification can bring the delivery in time.
    const child = workerProcess(store, { LOG_LEVEL: 'info', WEBHOOK_SWEEP_INTERVAL_MS: '60000' });
    let output = '';
    child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    await waitFor(() => output.includes('webhook worker listening for dispatches'), { timeoutMs: 20_000, what: 'the worker to listen' });

    const { deliveries } = await api.app.webhooks.dispatch(owner.id, 'card.viewed', {
      userId: owner.id,
      cardId: null,
      viewer: null,
      source: 'qr',
    });
    // Well within the minute the sweep would take.
    await waitFor(() => receiver.requests.length === 1, { timeoutMs: 10_000, what: 'the notified delivery' });
    expect(receiver.requests[0]?.headers['webhook-id']).toBe(deliveries[0]?.id);
  });

  it('a worker process stops sending to an endpoint once its DELETE has answered in the API process', async () => {
    const store = await sharedStore();
    const gate = await gatedReceiver();
    cleanups.push(() => gate.close());
    const api = await app(store, { WEBHOOK_WORKER: 'off' });
    const owner = await signUp(api.app, uniqueUsername('deletedelsewhere'));
    const endpoint = await createEndpoint(api.app, owner, `${gate.origin}/deleted`, ['card.viewed']);

    // Held attempts must not time out; the sweep is slow so only the worker's own claims move rows.
    const child = workerProcess(store, { LOG_LEVEL: 'info', WEBHOOK_TIMEOUT_MS: '20000' });
    let output = '';
    child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    await waitFor(() => output.includes('webhook worker listening for dispatches'), { timeoutMs: 20_000, what: 'the worker to listen' });
    for (let i = 0; i < 40; i++) {
      await api.app.webhooks.dispatch(owner.id, 'card.viewed', { userId: owner.id, cardId: null, viewer: null, source: 'link' });
    }
    // The worker holds its claim-ahead share of the endpoint; the first attempts are on the wire.
    await waitFor(() => gate.requests.length >= DEFAULT_MAX_IN_FLIGHT_PER_ENDPOINT, { what: 'the first attempts' });
    await waitFor(
      async () =>
        (await api.db.prisma.webhookDelivery.count({ where: { endpointId: endpoint.id, claimToken: { not: null } } })) >
        DEFAULT_MAX_IN_FLIGHT_PER_ENDPOINT,
      { what: 'the worker to hold rows waiting for a slot' },
    );

    const res = await api.app.inject({ method: 'DELETE', url: `/api/webhooks/${endpoint.id}`, headers: owner.auth });
    const answeredAt = Date.now();
    expect(res.statusCode).toBe(204);
    // The worker process hears of the delete by notification: the guarantee there is bounded by its latency.
    const notificationLatencyMs = 500;
    await sleep(notificationLatencyMs);
    gate.open();
    await sleep(1_500);
    expect(gate.requests.filter((r) => r.receivedAt > answeredAt)).toEqual([]);
    expect(gate.requests).toHaveLength(DEFAULT_MAX_IN_FLIGHT_PER_ENDPOINT);
  });

  it('a worker process killed mid-burst (kill -9) loses nothing: a new worker finishes, re-sending only what was in flight', async () => {
    const store = await sharedStore();
    // Slow enough that the burst is still running when the worker dies.
    const receiver = await receiverAnswering((request, res) => setTimeout(() => answer(200)(request, res), 15));
    const api = await app(store, { WEBHOOK_WORKER: 'off' });
    const owner = await signUp(api.app, uniqueUsername('crash'));
    const endpoint = await createEndpoint(api.app, owner, `${receiver.origin}/crash`, ['contact.saved']);

    const first = workerProcess(store);
    const total = 400;
    const ids: string[] = [];
    for (let i = 0; i < total; i++) {
      const { deliveries } = await api.app.webhooks.dispatch(owner.id, 'contact.saved', {
        userId: owner.id,
        cardId: owner.id,
        savedBy: { id: owner.id, username: owner.username },
      });
      ids.push(...deliveries.map((d) => d.id));
    }
    await waitFor(() => receiver.requests.length >= 60, { timeoutMs: 20_000, what: 'the first worker to be busy' });
    first.kill('SIGKILL');
    await once(first, 'exit');
    const receivedAtKill = receiver.requests.length;
    expect(receivedAtKill).toBeLessThan(total);

    // Rows the dead worker held: their leases would expire after timeout + 30 s; expire them now.
    const held = await makeDueNow(api.db, { claimed: true });
    expect(held.length).toBeGreaterThan(0);

    workerProcess(store);
    await waitFor(
      async () => (await api.db.prisma.webhookDelivery.count({ where: { endpointId: endpoint.id, status: 'success' } })) === total,
      { timeoutMs: 30_000, what: 'the second worker to finish' },
    );

    const counts = countById(receiver.requests);
    expect(new Set(counts.keys())).toEqual(new Set(ids));
    const duplicated = [...counts].filter(([, n]) => n > 1).map(([id]) => id);
    // Only attempts in flight at the kill were sent twice, each time under the same webhook-id.
    const heldIds = new Set(held.map((r) => r.id));
    expect(duplicated.every((id) => heldIds.has(id))).toBe(true);
    expect([...counts.values()].every((n) => n <= 2)).toBe(true);
    for (const id of duplicated) {
      const bodies = new Set(receiver.requests.filter((r) => r.headers['webhook-id'] === id).map((r) => r.body));
      expect(bodies.size).toBe(1);
    }
  });

  it('a worker process stopped with SIGTERM finishes or hands back its attempts: nothing is lost or sent twice', async () => {
    const store = await sharedStore();
    const receiver = await receiverAnswering((request, res) => setTimeout(() => answer(200)(request, res), 15));
    const api = await app(store, { WEBHOOK_WORKER: 'off' });
    const owner = await signUp(api.app, uniqueUsername('graceful'));
    const endpoint = await createEndpoint(api.app, owner, `${receiver.origin}/graceful`, ['contact.saved']);

    const first = workerProcess(store);
    const total = 300;
    for (let i = 0; i < total; i++) {
      await api.app.webhooks.dispatch(owner.id, 'contact.saved', {
        userId: owner.id,
        cardId: owner.id,
        savedBy: { id: owner.id, username: owner.username },
      });
    }
    await waitFor(() => receiver.requests.length >= 40, { timeoutMs: 20_000, what: 'the first worker to be busy' });
    first.kill('SIGTERM');
    const [code] = await once(first, 'exit');
    expect(code).toBe(0);
    expect(receiver.requests.length).toBeLessThan(total);
    const claimed = await api.db.prisma.webhookDelivery.count({ where: { status: 'pending', claimToken: { not: null } } });
    expect(claimed).toBe(0);

    workerProcess(store);
    await waitFor(
      async () => (await api.db.prisma.webhookDelivery.count({ where: { endpointId: endpoint.id, status: 'success' } })) === total,
      { timeoutMs: 30_000, what: 'the second worker to finish' },
    );
    const counts = countById(receiver.requests);
    expect(counts.size).toBe(total);
    expect(receiver.requests).toHaveLength(total);
  });
});
