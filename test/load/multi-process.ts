/**
 * Load check (PostgreSQL): 2 API processes (src/server.ts, WEBHOOK_WORKER=off) and 3 worker
 * processes (src/worker.ts) on one database schema. LOAD_EVENTS public card views (default
 * 10,000) fire card.viewed for 20 owners with one endpoint each: 12 healthy receivers, 4 that
 * always answer 500, 4 that answer 500 then 200 for each delivery. Then every delivery must
 * reach a final state, and the API's delivery log must match what the receivers saw: one
 * request per recorded attempt, no delivery sent twice, success exactly where a 2xx was sent.
 *
 *   DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test pnpm exec tsx test/load/multi-process.ts
 *
 * Exits non-zero on any violation. Too slow for the vitest budget, so .ci/run runs it on its own.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { splitSchema } from '../../src/db/database.ts';
import { TEST_ENV } from '../helpers/app.ts';
import { answer, startReceiver, type Receiver, type ReceiverHandler } from '../helpers/receiver.ts';
import { createTestStore } from '../helpers/store.ts';
import { sleep, waitFor } from '../helpers/wait.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const EVENTS = Number(process.env.LOAD_EVENTS ?? 10_000);
const HEALTHY = 12;
const ALWAYS_500 = 4;
const FLAKY = 4;
const ENDPOINTS = HEALTHY + ALWAYS_500 + FLAKY;
const API_PROCESSES = 2;
const WORKER_PROCESSES = 3;
const CONCURRENCY = 32;
const ATTEMPTS = 4; // 200ms,400ms,800ms from TEST_ENV
const SETTLE_TIMEOUT_MS = 5 * 60_000;

type Kind = 'healthy' | 'always-500' | 'flaky';
const kindOf = (i: number): Kind => (i < HEALTHY ? 'healthy' : i < HEALTHY + ALWAYS_500 ? 'always-500' : 'flaky');

process.env.DATABASE_URL ??= 'postgresql://postgres@127.0.0.1:5432/test';
const violations: string[] = [];
const check = (ok: boolean, message: string) => {
  if (!ok) violations.push(message);
};

const children: ChildProcess[] = [];
const receivers: Receiver[] = [];
const store = await createTestStore();
const { connectionString, schema } = splitSchema(store.env.DATABASE_URL!);
const sql = new pg.Client({ connectionString, options: `-c search_path=${schema}` });

async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  server.close();
  await once(server, 'close');
  return port;
}

function start(entry: string, env: Record<string, string>): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', entry], {
    cwd: ROOT,
    env: { ...process.env, ...TEST_ENV, ...store.env, LOG_LEVEL: 'warn', WEBHOOK_SWEEP_INTERVAL_MS: '200', ...env },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  children.push(child);
  return child;
}

async function api<T>(origin: string, method: string, path: string, body?: unknown, token?: string): Promise<T> {
  const res = await fetch(`${origin}${path}`, {
    method,
    headers: { ...(body !== undefined && { 'content-type': 'application/json' }), ...(token && { authorization: `Bearer ${token}` }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return (text ? JSON.parse(text) : undefined) as T;
}

function handlerFor(kind: Kind): ReceiverHandler {
  if (kind === 'healthy') return answer(200);
  if (kind === 'always-500') return answer(500, 'always failing');
  const seen = new Set<string>();
  return (request, res) => {
    const id = String(request.headers['webhook-id']);
    const first = !seen.has(id);
    seen.add(id);
    answer(first ? 500 : 200)(request, res);
  };
}

async function main(): Promise<void> {
  const began = Date.now();
  await sql.connect();

  // API processes first (they apply the migrations), then the workers.
  const apis: string[] = [];
  for (let i = 0; i < API_PROCESSES; i++) {
    const port = await freePort();
    start('src/server.ts', { PORT: String(port), HOST: '127.0.0.1', WEBHOOK_WORKER: 'off' });
    apis.push(`http://127.0.0.1:${port}`);
  }
  for (const origin of apis) {
    await waitFor(
      () =>
        fetch(`${origin}/health`).then(
          (r) => r.ok,
          () => false,
        ),
      { timeoutMs: 60_000, intervalMs: 200, what: `${origin} to be up` },
    );
  }
  for (let i = 0; i < WORKER_PROCESSES; i++) start('src/worker.ts', {});
  console.log(`load: ${API_PROCESSES} API processes up after ${Date.now() - began} ms`);

  // 20 owners, one endpoint each, one receiver each.
  const owners: Array<{ username: string; token: string; endpointId: string; kind: Kind; receiver: Receiver }> = [];
  for (let i = 0; i < ENDPOINTS; i++) {
    const kind = kindOf(i);
    const receiver = await startReceiver(handlerFor(kind));
    receivers.push(receiver);
    const username = `load${i}x${Date.now().toString(36)}`;
    const { token } = await api<{ token: string }>(apis[0]!, 'POST', '/auth/register', {
      email: `${username}@example.com`,
      username,
      password: 'password-123',
    });
    const endpoint = await api<{ id: string }>(
      apis[i % API_PROCESSES]!,
      'POST',
      '/api/webhooks',
      { url: `${receiver.origin}/hook`, events: ['card.viewed'] },
      token,
    );
    owners.push({ username, token, endpointId: endpoint.id, kind, receiver });
  }

  // EVENTS anonymous public views, spread over owners and API processes.
  const firing = Date.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      for (let n = next++; n < EVENTS; n = next++) {
        await api(apis[n % API_PROCESSES]!, 'GET', `/api/u/${owners[n % ENDPOINTS]!.username}`);
      }
    }),
  );
  const fired = Date.now();
  console.log(`load: ${EVENTS} events fired through ${API_PROCESSES} API processes in ${fired - firing} ms`);

  await waitFor(
    async () =>
      (await sql.query<{ n: number }>(`SELECT count(*)::int AS n FROM webhook_deliveries WHERE status = 'pending'`)).rows[0]!.n === 0,
    { timeoutMs: SETTLE_TIMEOUT_MS, intervalMs: 500, what: 'every delivery to reach a final state' },
  );
  console.log(`load: all deliveries final ${Date.now() - fired} ms after the last event`);
  // Anything still in flight would show up as an extra request below.
  await sleep(500);

  for (const child of children)
    check(child.exitCode === null && child.signalCode === null, `a process exited early (${child.exitCode ?? child.signalCode})`);

  // Compare the API's delivery log with what each receiver saw.
  let totalDeliveries = 0;
  for (const owner of owners) {
    const byStatus: Record<string, number> = {};
    for (const status of ['pending', 'success', 'failed', 'cancelled']) {
      const page = await api<{ pagination: { total: number } }>(
        apis[0]!,
        'GET',
        `/api/webhooks/${owner.endpointId}/deliveries?status=${status}&limit=1`,
        undefined,
        owner.token,
      );
      byStatus[status] = page.pagination.total;
    }
    const deliveries: Array<{ id: string; status: string; attempts: number }> = [];
    for (let page = 1; ; page++) {
      const { data, pagination } = await api<{ data: typeof deliveries; pagination: { totalPages: number } }>(
        apis[page % API_PROCESSES]!,
        'GET',
        `/api/webhooks/${owner.endpointId}/deliveries?page=${page}&limit=100`,
        undefined,
        owner.token,
      );
      deliveries.push(...data);
      if (page >= pagination.totalPages) break;
    }
    totalDeliveries += deliveries.length;
    const name = `endpoint ${owner.endpointId} (${owner.kind})`;
    // An always-500 endpoint is disabled after 15 failed deliveries; later events skip it.
    const events = Math.floor(EVENTS / ENDPOINTS) + (owners.indexOf(owner) < EVENTS % ENDPOINTS ? 1 : 0);
    if (owner.kind === 'always-500') check(deliveries.length <= events, `${name}: ${deliveries.length} deliveries for ${events} events`);
    else check(deliveries.length === events, `${name}: ${deliveries.length} deliveries, expected ${events}`);
    check(byStatus.pending === 0, `${name}: ${byStatus.pending} pending`);
    const totals = Object.values(byStatus).reduce((a, b) => a + b, 0);
    check(totals === deliveries.length, `${name}: status totals ${JSON.stringify(byStatus)} do not add up to ${deliveries.length}`);

    const received = new Map<string, number>();
    for (const r of owner.receiver.requests)
      received.set(String(r.headers['webhook-id']), (received.get(String(r.headers['webhook-id'])) ?? 0) + 1);
    const known = new Set(deliveries.map((d) => d.id));
    const strangers = [...received.keys()].filter((id) => !known.has(id));
    check(strangers.length === 0, `${name}: ${strangers.length} requests with a webhook-id the API does not list`);
    const attemptsLogged = deliveries.reduce((sum, d) => sum + d.attempts, 0);
    check(
      attemptsLogged === owner.receiver.requests.length,
      `${name}: ${attemptsLogged} attempts logged, ${owner.receiver.requests.length} requests received`,
    );

    let successes = 0;
    for (const d of deliveries) {
      const seen = received.get(d.id) ?? 0;
      if (d.status === 'success') successes++;
      check(seen === d.attempts, `${name}: delivery ${d.id} (${d.status}) received ${seen} times, ${d.attempts} attempts logged`);
      if (owner.kind === 'healthy')
        check(d.status === 'success' && seen === 1, `${name}: delivery ${d.id} ${d.status} after ${seen} requests (expected success once)`);
      if (owner.kind === 'flaky')
        check(d.status === 'success' && seen === 2, `${name}: delivery ${d.id} ${d.status} after ${seen} requests (expected 500 then 200)`);
      if (owner.kind === 'always-500') {
        check(d.status === 'failed' || d.status === 'cancelled', `${name}: delivery ${d.id} is ${d.status}`);
        check(d.status !== 'failed' || seen === ATTEMPTS, `${name}: failed delivery ${d.id} received ${seen} times, expected ${ATTEMPTS}`);
      }
    }
    if (owner.kind === 'always-500') {
      const endpoint = await api<{ isActive: boolean }>(apis[0]!, 'GET', `/api/webhooks/${owner.endpointId}`, undefined, owner.token);
      check(!endpoint.isActive, `${name}: still active after ${byStatus.failed} failed deliveries`);
    }
    check(successes === byStatus.success, `${name}: ${successes} successes listed, ${byStatus.success} counted`);
  }
  const requests = receivers.reduce((sum, r) => sum + r.requests.length, 0);
  console.log(
    `load: ${totalDeliveries} deliveries, ${requests} requests received, ${violations.length} violations, ${Date.now() - began} ms in all`,
  );
}

let failed = false;
try {
  await main();
} catch (error) {
  failed = true;
  console.error('load: aborted:', error);
} finally {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  await Promise.all(children.map((c) => (c.exitCode === null && c.signalCode === null ? once(c, 'exit') : undefined)));
  await Promise.all(receivers.map((r) => r.close()));
  await sql.end().catch(() => {});
  await store.drop();
}
for (const v of violations.slice(0, 50)) console.error(`load: VIOLATION ${v}`);
if (violations.length > 50) console.error(`load: … and ${violations.length - 50} more`);
process.exit(failed || violations.length > 0 ? 1 : 0);
