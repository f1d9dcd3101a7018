import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readdir, readFile, readlink } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { buildTestApp, TEST_ENV, type TestApp } from '../helpers/app.ts';
import { startReceiver, type Receiver } from '../helpers/receiver.ts';
import { createTestStore, type TestStore } from '../helpers/store.ts';
import { asUser, signUp, uniqueUsername, type Session } from '../helpers/users.ts';
import { sleep, waitFor } from '../helpers/wait.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const RATE = 5;
/** At 5 a second the burst is one attempt (queue/pacing.ts: a tenth of a second's worth, at least one). */
const BURST = 1;
const TOTAL = 30;
const WINDOW_MS = 1_000;
/**
 * The rule binds when attempts are claimed; the receiver sees when they arrive, after a send a
 * loaded machine may start late. One attempt of slack for that: without pacing it is far more.
 */
const MOST_IN_A_WINDOW = RATE + BURST + 1;

/** The most arrivals within any WINDOW_MS, from each arrival on. */
/** The local TCP ports of the sockets process `pid` holds open (Linux: its fds, matched by inode in /proc/net/tcp). */
async function localPorts(pid: number): Promise<Set<number>> {
  const inodes = new Set<string>();
  for (const fd of await readdir(`/proc/${pid}/fd`)) {
    const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
    const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
    if (inode) inodes.add(inode);
  }
  const ports = new Set<number>();
  for (const line of (await readFile(`/proc/${pid}/net/tcp`, 'utf8')).split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    const [local, inode] = [fields[1], fields[9]];
    if (local && inode && inodes.has(inode)) ports.add(Number.parseInt(local.split(':')[1]!, 16));
  }
  return ports;
}

function busiestWindow(arrivals: readonly number[]): number {
  const sorted = [...arrivals].sort((a, b) => a - b);
  let most = 0;
  for (let i = 0, j = 0; i < sorted.length; i++) {
    while (j < sorted.length && sorted[j]! < sorted[i]! + WINDOW_MS) j++;
    most = Math.max(most, j - i);
  }
  return most;
}

/**
 * A paced endpoint (`maxPerSecond`) end to end: real receivers on 127.0.0.1, the real worker(s),
 * both stores. What the receiver measures is the rule: at most RATE × W + BURST arrivals in any
 * window W, whoever sends them, while the worker holds no claim for the rows that wait their turn.
 */
describe('delivery engine: a paced endpoint', { timeout: 90_000 }, () => {
  const cleanups: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => {});
  });

  async function receiver(): Promise<Receiver> {
    const r = await startReceiver();
    cleanups.push(() => r.close());
    return r;
  }
  async function app(options: { store?: TestStore; env?: Record<string, string> } = {}): Promise<TestApp> {
    const t = await buildTestApp(options);
    cleanups.push(() => t.close({ keepStore: options.store !== undefined }));
    return t;
  }
  async function createEndpoint(t: TestApp, owner: Session, url: string, maxPerSecond: number | null): Promise<string> {
    const res = await asUser(t.app, owner, {
      method: 'POST',
      url: '/api/webhooks',
      payload: { url, events: ['card.viewed'], maxPerSecond },
    });
    expect(res.statusCode).toBe(201);
    expect(res.json().maxPerSecond).toBe(maxPerSecond);
    return res.json().id;
  }
  async function burst(t: TestApp, owner: Session): Promise<void> {
    await Promise.all(
      Array.from({ length: TOTAL }, () =>
        t.app.webhooks.dispatch(owner.id, 'card.viewed', { userId: owner.id, cardId: null, viewer: null, source: 'link' }),
      ),
    );
  }
  const pendingOf = (t: TestApp, endpointId: string, claimed: boolean) =>
    t.db.prisma.webhookDelivery.count({ where: { endpointId, status: 'pending', claimToken: claimed ? { not: null } : null } });

  it('gets a burst no faster than its rate while the same worker delivers another endpoint’s at once; waiting rows hold no claim', async () => {
    const slow = await receiver();
    const fast = await receiver();
    // No sweep within the test: only the wake timer, aimed at each next turn, can bring the rows in time.
    const t = await app({ env: { WEBHOOK_SWEEP_INTERVAL_MS: '600000' } });
    const owner = await signUp(t.app, uniqueUsername('paced'));
    const paced = await createEndpoint(t, owner, `${slow.origin}/paced`, RATE);
    await createEndpoint(t, owner, `${fast.origin}/free`, null);

    const startedAt = Date.now();
    await burst(t, owner);
    // The other endpoint of the same worker is not held up by the paced one's queue.
    await waitFor(() => fast.requests.length === TOTAL, { timeoutMs: 4_000, what: 'every delivery to the unpaced endpoint' });
    // Well before the paced endpoint's 5.8 s.
    expect(Date.now() - startedAt).toBeLessThan(4_000);

    // While the paced rows drain, those waiting for their turn stay in the queue, unclaimed.
    let mostClaimed = 0;
    let mostWaiting = 0;
    while (slow.requests.length < TOTAL && Date.now() - startedAt < 20_000) {
      mostClaimed = Math.max(mostClaimed, await pendingOf(t, paced, true));
      mostWaiting = Math.max(mostWaiting, await pendingOf(t, paced, false));
      await sleep(50);
    }
    expect(slow.requests).toHaveLength(TOTAL);
    expect(mostClaimed).toBeLessThanOrEqual(BURST);
    expect(mostWaiting).toBeGreaterThan(TOTAL / 2);

    const arrivals = slow.requests.map((r) => r.receivedAt);
    expect(busiestWindow(arrivals)).toBeLessThanOrEqual(MOST_IN_A_WINDOW);
    const spanMs = Math.max(...arrivals) - Math.min(...arrivals);
    // 30 attempts one turn (200 ms) apart after the first: 5.8 s, less what a receiver's clock can shave off.
    expect(spanMs).toBeGreaterThan(((TOTAL - BURST) / RATE) * 1000 - 300);
    // And no slower than the rate by much: the wake timer comes back for every turn.
    expect(spanMs).toBeLessThan(((TOTAL - BURST) / RATE) * 1000 + 2_500);
    await waitFor(async () => (await pendingOf(t, paced, false)) + (await pendingOf(t, paced, true)) === 0, {
      what: 'every paced delivery recorded',
    });
  });

  // Several worker processes on one queue need a real server: PGlite is one process's embedded store.
  it.skipIf(!process.env.DATABASE_URL)('two worker processes together still keep to the rate', async () => {
    const slow = await receiver();
    const store = await createTestStore();
    cleanups.push(() => store.drop());
    const api = await app({ store, env: { WEBHOOK_WORKER: 'off' } });
    const owner = await signUp(api.app, uniqueUsername('pacedtwice'));
    const paced = await createEndpoint(api, owner, `${slow.origin}/paced`, RATE);

    const workers = [worker(store), worker(store)];
    await Promise.all(workers.map((w) => waitFor(() => w.output().includes('webhook worker listening for dispatches'))));
    await burst(api, owner);
    await waitFor(() => slow.requests.length === TOTAL, { timeoutMs: 20_000, what: 'every paced delivery' });
    // Both processes took turns: each sent some of them, on connections of its own.
    const portsOf = await Promise.all(workers.map((w) => localPorts(w.process.pid!)));
    for (const ports of portsOf) expect(slow.requests.some((r) => ports.has(r.remotePort ?? -1))).toBe(true);

    const arrivals = slow.requests.map((r) => r.receivedAt);
    // Each process pacing on its own would make it twice the rate.
    expect(busiestWindow(arrivals)).toBeLessThanOrEqual(MOST_IN_A_WINDOW);
    expect(Math.max(...arrivals) - Math.min(...arrivals)).toBeGreaterThan(((TOTAL - BURST) / RATE) * 1000 - 300);
    await waitFor(async () => (await pendingOf(api, paced, false)) + (await pendingOf(api, paced, true)) === 0, {
      what: 'every paced delivery recorded',
    });
    expect(new Set(slow.requests.map((r) => r.headers['webhook-id'])).size).toBe(TOTAL);
  });

  function worker(store: TestStore): { process: ChildProcess; output(): string } {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/worker.ts'], {
      cwd: ROOT,
      // Frequent sweeps, so both processes keep reaching for the endpoint's turns.
      env: { ...process.env, ...TEST_ENV, ...store.env, LOG_LEVEL: 'info', WEBHOOK_SWEEP_INTERVAL_MS: '100' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let output = '';
    child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    cleanups.push(async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await once(child, 'exit');
      }
    });
    return { process: child, output: () => output };
  }
});
