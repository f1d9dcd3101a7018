import { once } from 'node:events';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { register, type Session, type TestApp } from './app.ts';

export type { Session } from './app.ts';

export interface ReceivedRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  receivedAt: number;
}

export type ReceiverHandler = (request: ReceivedRequest, res: ServerResponse) => void;

/** A real HTTP receiver on 127.0.0.1 that records every request before answering it. */
export interface Receiver {
  /** `http://127.0.0.1:<port>` */
  origin: string;
  port: number;
  requests: ReceivedRequest[];
  /** Replaces how it answers (default: 200 "ok"). */
  handle(handler: ReceiverHandler): void;
  /** Requests whose path is `path`. */
  at(path: string): ReceivedRequest[];
  close(): Promise<void>;
}

export const answer =
  (status: number, body = '', headers: Record<string, string> = {}): ReceiverHandler =>
  (_request, res) => {
    res.writeHead(status, headers);
    res.end(body);
  };

export async function startReceiver(handler: ReceiverHandler = answer(200, 'ok')): Promise<Receiver> {
  let current = handler;
  const requests: ReceivedRequest[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const request: ReceivedRequest = {
        method: req.method ?? '',
        path: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
        receivedAt: Date.now(),
      };
      requests.push(request);
      current(request, res);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  return {
    origin: `http://127.0.0.1:${port}`,
    port,
    requests,
    handle(next) {
      current = next;
    },
    at: (path) => requests.filter((r) => r.path === path),
    async close() {
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
}

/** A receiver that answers nothing until `open()` (then 200 to all): what it gets meanwhile stays on the wire. */
export async function gatedReceiver(): Promise<Receiver & { open(): void }> {
  let open = false;
  const held: Array<() => void> = [];
  const receiver = await startReceiver((request, res) => {
    const reply = () => answer(200)(request, res);
    if (open) reply();
    else held.push(reply);
  });
  return Object.assign(receiver, {
    open() {
      open = true;
      for (const reply of held.splice(0)) reply();
    },
  });
}

/** Polls `condition` until it holds (returns its value) or `timeoutMs` passes (throws with `what`). */
export async function waitFor<T>(
  condition: () => T | Promise<T>,
  options: { timeoutMs?: number; intervalMs?: number; what?: string } = {},
): Promise<NonNullable<T>> {
  const { timeoutMs = 20_000, intervalMs = 20, what = 'condition' } = options;
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  for (;;) {
    last = await condition();
    if (last) return last as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

let counter = 0;

/** Registers a user with a unique name through the real auth route. */
export async function signUp(app: FastifyInstance, prefix = 'user'): Promise<Session> {
  return register(app, `${prefix}${++counter}${Date.now().toString(36).slice(-4)}`);
}

export async function createCard(app: FastifyInstance, owner: Session, title = 'Card'): Promise<string> {
  const res = await app.inject({ method: 'POST', url: '/api/cards', headers: owner.auth, payload: { title } });
  if (res.statusCode !== 201) throw new Error(`create card failed: ${res.statusCode} ${res.body}`);
  return res.json().id;
}

/** Registers an endpoint through the real API; returns its id and the secret shown once. */
export async function createEndpoint(
  app: FastifyInstance,
  owner: Session,
  url: string,
  events: string[] = ['card.viewed', 'contact.saved'],
): Promise<{ id: string; secret: string }> {
  const res = await app.inject({ method: 'POST', url: '/api/webhooks', headers: owner.auth, payload: { url, events } });
  if (res.statusCode !== 201) throw new Error(`create endpoint failed: ${res.statusCode} ${res.body}`);
  const { id, secret } = res.json();
  return { id, secret };
}

/** All delivery rows of an endpoint, oldest first. */
export function deliveriesOf(t: TestApp, endpointId: string) {
  return t.db.prisma.webhookDelivery.findMany({
    where: { endpointId },
    orderBy: { createdAt: 'asc' },
    include: { attemptsLog: { orderBy: { attemptNumber: 'asc' } } },
  });
}
