/**
 * `pnpm demo`: the whole webhook loop in one command.
 *
 * Starts the service on the embedded store in a temporary folder (or reuses one already
 * answering /health on PORT), starts a receiver on 127.0.0.1 that verifies every signature with
 * `verifyWebhook` from src/webhooks/signing.ts, registers two users, a card and an endpoint,
 * sends a test event, views and saves the card, and prints each delivery as it arrives. The
 * receiver answers the first attempt of the contact.saved delivery with a 503, to show a retry
 * with the same webhook-id. Ends with the receiver self-test. Exit 0 once every delivery has
 * arrived verified; 1 with a message otherwise. A server it started is stopped on the way out.
 *
 * Environment: PORT (where to look for a running service, default 3000; 0 always starts a new one), DEMO_TIMEOUT_MS
 * (how long to wait for start-up and for the deliveries, default 120000).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { verifyWebhook } from '../src/webhooks/signing.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const TIMEOUT_MS = Number(process.env.DEMO_TIMEOUT_MS ?? 120_000);
/** Short, so the demonstrated retry arrives within seconds. */
const DEMO_RETRY_SCHEDULE = '2s,5s,10s';
const EXPECTED_EVENTS = ['webhook.test', 'card.viewed', 'contact.saved'] as const;
/** The receiver fails the first attempt of this event, so the demo shows a retry. */
const RETRIED_EVENT = 'contact.saved';

class DemoError extends Error {}

const say = (line = '') => process.stdout.write(`${line}\n`);
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------------------------------------
// The service: reuse a running one, or start our own on a free port.

interface Service {
  baseUrl: string;
  /** Stops the service if this script started it. */
  stop(): Promise<void>;
  /** What the service printed, for failure reports (own service only). */
  output(): string;
}

async function isDevcardHealthy(baseUrl: string): Promise<boolean> {
  try {
    const res = await fetch(`${baseUrl}/health`, { signal: AbortSignal.timeout(2_000) });
    const body = (await res.json()) as { status?: string };
    return res.ok && body.status === 'ok';
  } catch {
    return false;
  }
}

async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  server.close();
  await once(server, 'close');
  return port;
}

async function startOrReuseService(): Promise<Service> {
  const runningUrl = `http://127.0.0.1:${process.env.PORT ?? 3000}`;
  if (await isDevcardHealthy(runningUrl)) {
    say(`Using the service already running at ${runningUrl}.`);
    say('It can deliver to this demo only if it was started with WEBHOOK_ALLOW_PRIVATE_NETWORKS=true');
    say('(the demo receiver listens on 127.0.0.1); its own WEBHOOK_RETRY_SCHEDULE sets how soon retries come.');
    return { baseUrl: runningUrl, stop: async () => {}, output: () => '' };
  }

  const dataDir = await mkdtemp(path.join(tmpdir(), 'devcard-demo-'));
  const port = await freePort();
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    NODE_ENV: 'development',
    HOST: '127.0.0.1',
    PORT: String(port),
    DATA_DIR: dataDir,
    LOG_LEVEL: 'warn',
    WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'true',
    WEBHOOK_RETRY_SCHEDULE: DEMO_RETRY_SCHEDULE,
    WEBHOOK_SWEEP_INTERVAL_MS: '1000',
    WEBHOOK_WORKER: 'on',
  };
  delete env.DATABASE_URL; // the embedded store, whatever the shell says
  say(`Starting the service on http://127.0.0.1:${port} (embedded store in ${dataDir}) …`);
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const service: Service = {
    baseUrl: `http://127.0.0.1:${port}`,
    output: () => output,
    stop: async () => {
      await stopChild(child);
      await rm(dataDir, { recursive: true, force: true });
    },
  };

  const deadline = Date.now() + TIMEOUT_MS;
  while (!(await isDevcardHealthy(service.baseUrl))) {
    if (child.exitCode !== null) {
      await service.stop();
      throw new DemoError(`the service exited with code ${child.exitCode} while starting:\n${output}`);
    }
    if (Date.now() > deadline) {
      await service.stop();
      throw new DemoError(`the service did not answer /health within ${TIMEOUT_MS} ms:\n${output}`);
    }
    await sleep(250);
  }
  say('Service is up.');
  return service;
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  await exited;
  clearTimeout(killer);
}

// ---------------------------------------------------------------------------------------------
// The receiver: verifies every request with the exported helper and prints it.

interface Arrival {
  eventType: string;
  deliveryId: string;
  attempt: number;
  verified: boolean;
  status: number;
}

interface DemoReceiver {
  url: string;
  arrivals: Arrival[];
  /** Set once the endpoint exists: the receiver verifies with it. */
  secret: string | undefined;
  /** Requests during the self-test are labelled as probes. */
  probing: boolean;
  close(): Promise<void>;
}

async function startReceiver(): Promise<DemoReceiver> {
  const attemptsById = new Map<string, number>();
  const receiver: DemoReceiver = { url: '', arrivals: [], secret: undefined, probing: false, close: async () => {} };

  const handle = (req: IncomingMessage, res: ServerResponse, rawBody: Buffer): void => {
    const deliveryId = String(req.headers['webhook-id'] ?? '?');
    const eventType = String(req.headers['x-devcard-event'] ?? '?');
    const check = receiver.secret
      ? verifyWebhook({ secret: receiver.secret, headers: req.headers, body: rawBody })
      : { ok: false as const, reason: 'no secret yet' };
    if (receiver.probing) {
      const status = check.ok ? 204 : 401;
      const verdict = check.ok ? 'signature verified' : `rejected: ${check.reason}`;
      say(`  self-test probe  ${eventType.padEnd(13)} ${verdict} → ${status}`);
      res.writeHead(status).end();
      return;
    }
    const attempt = (attemptsById.get(deliveryId) ?? 0) + 1;
    attemptsById.set(deliveryId, attempt);
    const failOnPurpose = check.ok && eventType === RETRIED_EVENT && attempt === 1;
    const status = !check.ok ? 401 : failOnPurpose ? 503 : 204;
    receiver.arrivals.push({ eventType, deliveryId, attempt, verified: check.ok, status });
    const verdict = check.ok ? 'signature verified' : `SIGNATURE INVALID (${check.reason})`;
    const note = failOnPurpose ? ' (failing on purpose: watch the retry)' : '';
    say(`  ← ${eventType.padEnd(13)} delivery ${deliveryId}  attempt ${attempt}  ${verdict} → ${status}${note}`);
    res.writeHead(status).end();
  };

  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => handle(req, res, Buffer.concat(chunks)));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  receiver.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/devcard-webhooks`;
  receiver.close = async () => {
    server.closeAllConnections();
    server.close();
    await once(server, 'close');
  };
  return receiver;
}

// ---------------------------------------------------------------------------------------------
// The API calls a DevCard user would make.

function apiClient(baseUrl: string) {
  return async function call<T>(method: string, route: string, options: { token?: string; body?: unknown } = {}): Promise<T> {
    const res = await fetch(`${baseUrl}${route}`, {
      method,
      headers: {
        ...(options.token && { authorization: `Bearer ${options.token}` }),
        ...(options.body !== undefined && { 'content-type': 'application/json' }),
      },
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
    const text = await res.text();
    if (!res.ok) {
      const hint = text.includes('URL_NOT_ALLOWED')
        ? '\nThe running service refuses 127.0.0.1: restart it with WEBHOOK_ALLOW_PRIVATE_NETWORKS=true, or stop it and let the demo start its own.'
        : '';
      throw new DemoError(`${method} ${route} answered ${res.status}: ${text}${hint}`);
    }
    return (text ? JSON.parse(text) : undefined) as T;
  };
}

function allArrived(arrivals: readonly Arrival[]): boolean {
  return EXPECTED_EVENTS.every((type) => arrivals.some((a) => a.eventType === type && a.verified && a.status < 300));
}

async function runDemo(service: Service, receiver: DemoReceiver): Promise<void> {
  const call = apiClient(service.baseUrl);
  const suffix = randomBytes(3).toString('hex');
  const password = 'demo-password-123';

  const owner = await call<{ token: string }>('POST', '/auth/register', {
    body: { email: `ada_${suffix}@example.com`, username: `ada_${suffix}`, password, displayName: 'Ada Lovelace' },
  });
  const viewer = await call<{ token: string }>('POST', '/auth/register', {
    body: { email: `bob_${suffix}@example.com`, username: `bob_${suffix}`, password },
  });
  say(`Registered ada_${suffix} (card owner) and bob_${suffix} (viewer).`);
  const card = await call<{ id: string }>('POST', '/api/cards', {
    token: owner.token,
    body: { title: 'Ada Lovelace', company: 'Analytical Engines' },
  });
  say(`Created card ${card.id}.`);
  const endpoint = await call<{ id: string; secret: string }>('POST', '/api/webhooks', {
    token: owner.token,
    body: { url: receiver.url, events: ['card.viewed', 'contact.saved'], description: 'pnpm demo' },
  });
  receiver.secret = endpoint.secret;
  say(`Registered endpoint ${endpoint.id} → ${receiver.url} (secret ${endpoint.secret.slice(0, 10)}…).`);
  say();

  say('Sending a test event, then bob views and saves the card; deliveries as they arrive:');
  await call('POST', `/api/webhooks/${endpoint.id}/test`, { token: owner.token });
  await call('GET', `/api/u/card/${card.id}?source=qr`, { token: viewer.token });
  await call('POST', `/api/cards/${card.id}/save`, { token: viewer.token });

  const deadline = Date.now() + TIMEOUT_MS;
  while (!allArrived(receiver.arrivals)) {
    if (Date.now() > deadline) {
      const missing = EXPECTED_EVENTS.filter(
        (type) => !receiver.arrivals.some((a) => a.eventType === type && a.verified && a.status < 300),
      );
      throw new DemoError(`timed out after ${TIMEOUT_MS} ms waiting for ${missing.join(', ')}`);
    }
    await sleep(100);
  }
  if (receiver.arrivals.some((a) => !a.verified)) throw new DemoError('a delivery arrived with a signature that did not verify');
  say();
  say(`All ${EXPECTED_EVENTS.length} deliveries arrived and every signature verified.`);

  say();
  say('Receiver self-test (POST /api/webhooks/:id/verify-receiver): a valid, a wrongly signed and a stale probe:');
  receiver.probing = true;
  const report = await call<{ verdict: string; message: string }>('POST', `/api/webhooks/${endpoint.id}/verify-receiver`, {
    token: owner.token,
  });
  receiver.probing = false;
  say(`  verdict: ${report.verdict}. ${report.message}`);
  say();
  say(`Delivery log: curl -s ${service.baseUrl}/api/webhooks/${endpoint.id}/deliveries -H "authorization: Bearer <token>"`);
}

async function main(): Promise<number> {
  let service: Service | undefined;
  let receiver: DemoReceiver | undefined;
  try {
    receiver = await startReceiver();
    service = await startOrReuseService();
    await runDemo(service, receiver);
    say('Demo finished.');
    return 0;
  } catch (error) {
    const message = error instanceof DemoError ? error.message : error instanceof Error ? (error.stack ?? error.message) : String(error);
    process.stderr.write(`\nDemo failed: ${message}\n`);
    const output = service?.output();
    if (output && !(error instanceof DemoError && message.includes(output))) process.stderr.write(`Service output:\n${output}\n`);
    return 1;
  } finally {
    await service?.stop();
    await receiver?.close();
  }
}

// Exit explicitly: keep-alive sockets of fetch would otherwise hold the process open for a while.
process.exit(await main());
