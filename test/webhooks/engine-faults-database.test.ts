import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { CLAIM_AHEAD, DEFAULT_MAX_IN_FLIGHT_PER_ENDPOINT, LEASE_MARGIN_MS } from '../../src/webhooks/delivery/worker-options.ts';
import { buildTestApp, TEST_ENV } from '../helpers/app.ts';
import { answer, startReceiver } from '../helpers/receiver.ts';
import { createTestStore } from '../helpers/store.ts';
import { startTcpProxy } from '../helpers/tcp-proxy.ts';
import { signUp, uniqueUsername } from '../helpers/users.ts';
import { sleep, waitFor } from '../helpers/wait.ts';
import { createEndpoint } from '../helpers/webhook-api.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const OUTAGE_MS = 3_000;
/** A claim older than this cannot belong to a live attempt (timeout 2 s, instant receiver, result writes retried every second). */
const ORPHANED_CLAIM_AGE_MS = 6_000;
/** The worker's lease (worker-options.ts): a claim records no time of its own, only when its lease runs out. */
const LEASE_MS = CLAIM_AHEAD * Number(TEST_ENV.WEBHOOK_TIMEOUT_MS) + LEASE_MARGIN_MS;

// The worker must be a separate process whose connections a proxy can cut: PostgreSQL only.
describe.skipIf(!process.env.DATABASE_URL)('delivery engine: the database goes away mid-burst', { timeout: 90_000 }, () => {
  const cleanups: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => {});
  });

  it('a worker process survives a database outage, logs it, and every delivery still succeeds once it is back', async () => {
    const store = await createTestStore();
    cleanups.push(() => store.drop());
    const receiver = await startReceiver((request, res) => setTimeout(() => answer(200)(request, res), 50));
    cleanups.push(() => receiver.close());
    // The API process talks to PostgreSQL directly; only the worker's connections go through the proxy.
    const api = await buildTestApp({ store, env: { WEBHOOK_WORKER: 'off' } });
    cleanups.push(() => api.close({ keepStore: true }));
    const owner = await signUp(api.app, uniqueUsername('outage'));
    const endpoint = await createEndpoint(api.app, owner, `${receiver.origin}/outage`, ['contact.saved']);

    const direct = new URL(store.env.DATABASE_URL!);
    const proxy = await startTcpProxy({ host: direct.hostname, port: Number(direct.port || 5432) });
    cleanups.push(() => proxy.close());
    const viaProxy = new URL(direct);
    viaProxy.hostname = '127.0.0.1';
    viaProxy.port = String(proxy.port);

    const worker: ChildProcess = spawn(process.execPath, ['--import', 'tsx', 'src/worker.ts'], {
      cwd: ROOT,
      env: {
        ...process.env,
        ...TEST_ENV,
        ...store.env,
        DATABASE_URL: viaProxy.toString(),
        LOG_LEVEL: 'info',
        WEBHOOK_SWEEP_INTERVAL_MS: '200',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    cleanups.push(async () => {
      if (worker.exitCode === null && worker.signalCode === null) {
        worker.kill('SIGKILL');
        await once(worker, 'exit');
      }
    });
    let log = '';
    worker.stdout!.on('data', (chunk: Buffer) => (log += chunk.toString()));
    worker.stderr!.on('data', (chunk: Buffer) => (log += chunk.toString()));
    const listening = () => log.split('webhook worker listening for dispatches').length - 1;
    await waitFor(() => listening() === 1, { timeoutMs: 20_000, what: 'the worker to listen' });

    const total = 300;
    const ids: string[] = [];
    const dispatch = async (n: number) => {
      for (let i = 0; i < n; i++) {
        const { deliveries } = await api.app.webhooks.dispatch(owner.id, 'contact.saved', {
          userId: owner.id,
          cardId: owner.id,
          savedBy: { id: owner.id, username: owner.username },
        });
        ids.push(...deliveries.map((d) => d.id));
      }
    };

    // A third of the burst before the outage, a third during it, a third after.
    await dispatch(total / 3);
    await waitFor(() => receiver.requests.length >= 30, { timeoutMs: 20_000, what: 'the worker to be busy' });
    proxy.cut();
    const outageEnds = Date.now() + OUTAGE_MS;
    const receivedAtCut = receiver.requests.length;
    await dispatch(total / 3);
    await sleep(outageEnds - Date.now());
    // Nothing can be claimed without the database: at most what the worker already held (in
    // flight, or claimed ahead and waiting for a slot) arrived.
    expect(receiver.requests.length - receivedAtCut).toBeLessThanOrEqual(DEFAULT_MAX_IN_FLIGHT_PER_ENDPOINT * CLAIM_AHEAD);
    expect(worker.exitCode).toBeNull();
    proxy.restore();
    await dispatch(total / 3);

    // A claim whose reply was lost with the connection comes back when its lease expires
    // (timeout + 30 s); bring such orphans forward so the test need not wait for it.
    const allSucceeded = (expected: number, what: string) =>
      waitFor(
        async () => {
          await api.db.sql.query(
            `UPDATE webhook_queue SET due_at = now(), lease_until = now()
             WHERE claim_token IS NOT NULL AND lease_until < now() + $1::int * interval '1 millisecond'`,
            [LEASE_MS - ORPHANED_CLAIM_AGE_MS],
          );
          return (await api.db.prisma.webhookDelivery.count({ where: { endpointId: endpoint.id, status: 'success' } })) === expected;
        },
        { timeoutMs: 45_000, intervalMs: 200, what },
      );
    await allSucceeded(total, 'every delivery to succeed after the outage');
    expect(worker.exitCode).toBeNull();

    // The outage was logged as errors, and the LISTEN connection came back.
    expect(log).toMatch(/"level":50[^\n]*(claiming deliveries failed|writing attempt results failed)/);
    expect(log).toContain('webhook LISTEN connection lost');
    await waitFor(() => listening() >= 2, { timeoutMs: 15_000, what: 'the LISTEN connection to come back' });

    // A second, short outage while the worker only sweeps: the connections idle in its pool
    // die this time (mid-burst, all of them may have been busy).
    proxy.cut();
    await sleep(1_000);
    expect(worker.exitCode).toBeNull();
    proxy.restore();
    await dispatch(20);
    await allSucceeded(total + 20, 'the deliveries after the second outage');
    expect(worker.exitCode).toBeNull();

    // Orphaned claims were never sent: every delivery arrived, none twice, one attempt each.
    const counts = new Map<string, number>();
    for (const r of receiver.requests) counts.set(String(r.headers['webhook-id']), (counts.get(String(r.headers['webhook-id'])) ?? 0) + 1);
    expect(new Set(counts.keys())).toEqual(new Set(ids));
    expect([...counts.values()].filter((n) => n > 1)).toEqual([]);
    expect(await api.db.prisma.webhookDeliveryAttempt.count()).toBe(total + 20);
  });
});
