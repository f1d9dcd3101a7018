import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTcpServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_MAX_IN_FLIGHT, DEFAULT_MAX_IN_FLIGHT_PER_ENDPOINT } from '../../src/webhooks/delivery/worker-options.ts';
import { RESPONSE_BODY_LIMIT_BYTES } from '../../src/webhooks/delivery/retry-policy.ts';
import { buildTestApp, type TestApp } from '../helpers/app.ts';
import { listenLocally } from '../helpers/listen.ts';
import { startReceiver, type Receiver } from '../helpers/receiver.ts';
import { signUp, uniqueUsername, type Session } from '../helpers/users.ts';
import { waitFor } from '../helpers/wait.ts';
import { createEndpoint, deliveriesOf } from '../helpers/webhook-api.ts';

// 4 attempts in all (200ms,400ms,800ms from the test helper); a timeout long enough that the
// healthy endpoint finishes while the slow receiver's first attempts still hang.
const TIMEOUT_MS = 4_000;
const ENV = { WEBHOOK_TIMEOUT_MS: String(TIMEOUT_MS), WEBHOOK_SWEEP_INTERVAL_MS: '200' };
const HUGE_BODY_BYTES = 50 * 1024 * 1024;
const ATTEMPTS = 4;

/** A faulty receiver: a server that behaves badly on purpose, and the webhook-ids it saw. */
interface FaultyReceiver {
  origin: string;
  /** webhook-id of every request, in arrival order (raw TCP receivers: parsed from the head). */
  ids: string[];
  close(): Promise<void>;
}

async function listen(server: Server | ReturnType<typeof createTcpServer>, ids: string[]): Promise<FaultyReceiver> {
  return { ...(await listenLocally(server)), ids };
}

/** An HTTP receiver that reads the request, then calls `onRequest` (which may never answer). */
async function httpReceiver(onRequest: (req: IncomingMessage, res: ServerResponse) => void): Promise<FaultyReceiver> {
  const ids: string[] = [];
  const server = createHttpServer((req, res) => {
    ids.push(String(req.headers['webhook-id']));
    req.resume();
    req.on('end', () => onRequest(req, res));
  });
  return listen(server, ids);
}

/** A TCP receiver that answers each request head with raw `bytes`, then drops the connection. */
async function rawReceiver(bytes: string): Promise<FaultyReceiver> {
  const ids: string[] = [];
  const server = createTcpServer((socket) => {
    let head = '';
    socket.on('error', () => {});
    socket.on('data', (chunk: Buffer) => {
      if (head.includes('\r\n\r\n')) return;
      head += chunk.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      ids.push(/^webhook-id: *(.+)$/im.exec(head)?.[1]?.trim() ?? '?');
      socket.write(bytes, () => socket.destroy());
    });
  });
  return listen(server, ids);
}

describe('delivery engine: receivers that misbehave', { timeout: 60_000 }, () => {
  let t: TestApp;
  const closers: Array<() => Promise<void>> = [];

  beforeAll(async () => {
    t = await buildTestApp({ env: ENV });
  });
  afterAll(async () => {
    await t?.close();
    for (const close of closers) await close();
  });

  async function endpointFor(name: string, origin: string): Promise<{ owner: Session; id: string }> {
    // One user per receiver, so each event goes to one endpoint only.
    const owner = await signUp(t.app, uniqueUsername(name));
    const { id } = await createEndpoint(t.app, owner, `${origin}/${name}`, ['card.viewed']);
    return { owner, id };
  }
  async function fire(owner: Session, n: number): Promise<void> {
    for (let i = 0; i < n; i++) {
      await t.app.webhooks.dispatch(owner.id, 'card.viewed', { userId: owner.id, cardId: null, viewer: null, source: 'link' });
    }
  }

  it('records an error for each failed attempt and retries; a healthy endpoint is served while a slow one hangs', async () => {
    // Slow: never answers. Open requests are counted to check the per-endpoint cap.
    let slowOpen = 0;
    let slowMaxOpen = 0;
    const slow = await httpReceiver((req) => {
      slowOpen++;
      slowMaxOpen = Math.max(slowMaxOpen, slowOpen);
      req.socket.on('close', () => slowOpen--);
    });
    // Reset: drops the connection instead of answering.
    const reset = await httpReceiver((req) => req.socket.destroy());
    // Garbage: bytes that are not HTTP.
    const garbage = await rawReceiver('\u0000\u0001 this is not HTTP at all\r\n\r\n');
    // Closes mid-response: a status line and part of the promised body, then the connection goes.
    const cut = await rawReceiver('HTTP/1.1 200 OK\r\ncontent-length: 1000\r\ncontent-type: text/plain\r\n\r\nonly part of it');
    // Huge: a 500 with a 50 MB body, streamed with backpressure; how much of it went out is kept.
    const hugeSent: Array<{ bytes: number; finished: boolean }> = [];
    const huge = await httpReceiver((_req, res) => {
      const chunk = Buffer.alloc(64 * 1024, 'x');
      let bytes = 0;
      res.writeHead(500, { 'content-type': 'text/plain', 'content-length': String(HUGE_BODY_BYTES) });
      res.on('close', () => hugeSent.push({ bytes, finished: res.writableFinished }));
      const pump = () => {
        while (bytes < HUGE_BODY_BYTES && !res.destroyed) {
          bytes += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        res.end();
      };
      pump();
    });
    const healthy: Receiver = await startReceiver();
    for (const r of [slow, reset, garbage, cut, huge, healthy]) closers.push(() => r.close());

    const slowEndpoint = await endpointFor('slow', slow.origin);
    const failing = {
      reset: await endpointFor('reset', reset.origin),
      garbage: await endpointFor('garbage', garbage.origin),
      cut: await endpointFor('cut', cut.origin),
      huge: await endpointFor('huge', huge.origin),
    };
    const healthyEndpoint = await endpointFor('healthy', healthy.origin);

    // The slow endpoint's backlog is larger than the worker's whole capacity: without the
    // per-endpoint cap it would take every slot and the others would wait for its timeouts.
    await fire(slowEndpoint.owner, 1);
    // More deliveries of that one event, due now.
    await t.db.sql.query(
      `INSERT INTO webhook_queue (endpoint_id, delivery_id, event_id, event_type, due_at)
       SELECT d.endpoint_id, webhook_uuid7(), d.event_id, d.event_type, now()
       FROM webhook_deliveries d, generate_series(1, $2::int)
       WHERE d.endpoint_id = $1::uuid`,
      [slowEndpoint.id, DEFAULT_MAX_IN_FLIGHT + 20],
    );
    // The slow endpoint fills exactly its per-endpoint share of the worker, no more.
    await waitFor(() => slowOpen === DEFAULT_MAX_IN_FLIGHT_PER_ENDPOINT, { what: 'the slow receiver to hold the per-endpoint cap' });
    for (const { owner } of Object.values(failing)) await fire(owner, 2);
    await fire(healthyEndpoint.owner, 20);

    // Healthy deliveries finish while every slow attempt still hangs (none has timed out yet).
    await waitFor(
      async () => (await t.db.prisma.webhookDelivery.count({ where: { endpointId: healthyEndpoint.id, status: 'success' } })) === 20,
      {
        what: 'the healthy endpoint to be served',
      },
    );
    const slowAttemptsSoFar = await t.db.prisma.webhookDeliveryAttempt.count({ where: { delivery: { endpointId: slowEndpoint.id } } });
    expect(slowAttemptsSoFar).toBe(0);
    // Measured before any slow attempt timed out: after a timeout the client frees its slot at
    // once, and the receiver may see the next request before the old socket's close, so only
    // this window gives an exact count.
    expect(slowMaxOpen).toBe(DEFAULT_MAX_IN_FLIGHT_PER_ENDPOINT);
    expect(healthy.requests).toHaveLength(20);

    // Each failing receiver: every delivery ends `failed` after all its attempts, each with an error.
    const expectedError: Record<keyof typeof failing, RegExp> = {
      reset: /connection (closed by receiver|reset)/,
      garbage: /./,
      cut: /connection (closed by receiver|reset)|terminated|aborted/i,
      huge: /^HTTP 500$/,
    };
    for (const [name, { id }] of Object.entries(failing) as Array<[keyof typeof failing, { id: string }]>) {
      const rows = await waitFor(
        async () => {
          const all = await deliveriesOf(t, id);
          return all.length === 2 && all.every((d) => d.status === 'failed') ? all : undefined;
        },
        { timeoutMs: 15_000, what: `the ${name} deliveries to fail` },
      );
      for (const delivery of rows) {
        expect(delivery.attempts, name).toBe(ATTEMPTS);
        expect(
          delivery.attemptsLog.map((a) => a.attemptNumber),
          name,
        ).toEqual([1, 2, 3, 4]);
        for (const attempt of delivery.attemptsLog) {
          expect(attempt.error, name).toMatch(expectedError[name]);
          expect(Buffer.byteLength(attempt.responseBody ?? ''), name).toBeLessThanOrEqual(RESPONSE_BODY_LIMIT_BYTES);
        }
      }
    }
    expect(garbage.ids).toHaveLength(2 * ATTEMPTS);
    expect(reset.ids).toHaveLength(2 * ATTEMPTS);

    // The mid-response close had sent its status line: kept, and still a failure.
    const cutAttempts = (await deliveriesOf(t, failing.cut.id)).flatMap((d) => d.attemptsLog);
    expect(cutAttempts.every((a) => a.responseCode === 200)).toBe(true);

    // The huge body: 2 KiB kept, and the connection abandoned long before 50 MB went out.
    const hugeAttempts = (await deliveriesOf(t, failing.huge.id)).flatMap((d) => d.attemptsLog);
    expect(hugeAttempts.every((a) => a.responseCode === 500 && a.responseBody === 'x'.repeat(RESPONSE_BODY_LIMIT_BYTES))).toBe(true);
    await waitFor(() => hugeSent.length === 2 * ATTEMPTS, { what: 'every huge response to end' });
    for (const sent of hugeSent) {
      expect(sent.finished).toBe(false);
      expect(sent.bytes).toBeLessThan(HUGE_BODY_BYTES / 4);
    }

    // The slow receiver: each first attempt times out with that error and is scheduled again
    // (behind the older backlog, which comes first).
    const timedOut = await waitFor(
      async () => {
        const attempts = await t.db.prisma.webhookDeliveryAttempt.findMany({ where: { delivery: { endpointId: slowEndpoint.id } } });
        return attempts.length > 0 ? attempts : undefined;
      },
      { timeoutMs: TIMEOUT_MS + 10_000, what: 'the slow attempts to time out' },
    );
    expect(timedOut.every((a) => a.error === `timeout after ${TIMEOUT_MS} ms` && a.responseCode === null)).toBe(true);
    const retried = await t.db.prisma.webhookDelivery.findMany({ where: { id: { in: timedOut.map((a) => a.deliveryId) } } });
    expect(retried.every((d) => d.status === 'pending' && d.attempts >= 1 && d.nextRetryAt !== null)).toBe(true);
  });
});
