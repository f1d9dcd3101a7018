import { once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import { WebhookSender, type WebhookSenderOptions } from '../../src/webhooks/delivery/sender.ts';
import type { LookupFn } from '../../src/webhooks/dns-lookup.ts';

interface Receiver {
  url: string;
  port: number;
  connections: number;
  requests: Array<{ method: string; url: string; headers: IncomingMessage['headers']; body: string }>;
}

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((cleanup) => cleanup()));
});

/** A real receiver on 127.0.0.1 that records connections and requests before handling them. */
async function startReceiver(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<Receiver> {
  const server = createServer();
  const receiver: Receiver = { url: '', port: 0, connections: 0, requests: [] };
  server.on('connection', () => receiver.connections++);
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      receiver.requests.push({
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString(),
      });
      handler(req, res);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  receiver.port = (server.address() as AddressInfo).port;
  receiver.url = `http://127.0.0.1:${receiver.port}/hook`;
  cleanups.push(async () => {
    server.closeAllConnections();
    server.close();
    await once(server, 'close');
  });
  return receiver;
}

function newSender(overrides: Partial<WebhookSenderOptions> = {}): WebhookSender {
  const sender = new WebhookSender({ timeoutMs: 2_000, allowPrivateNetworks: true, userAgent: 'DevCard-Webhooks/test', ...overrides });
  cleanups.push(() => sender.close());
  return sender;
}

const body = JSON.stringify({ id: 'evt_1', type: 'webhook.test', data: { endpointId: 'ep_1' } });
const endpointId = 'ep_1';
const signingHeaders = { 'webhook-id': 'dlv_1', 'webhook-timestamp': '1790000000', 'webhook-signature': 'v1,abc' };

function countingLookup(answer: Array<{ address: string; family: 4 | 6 }>): LookupFn & { calls: string[] } {
  const calls: string[] = [];
  return Object.assign(
    async (hostname: string) => {
      calls.push(hostname);
      return answer;
    },
    { calls },
  );
}

describe('WebhookSender', () => {
  it('POSTs the body with the caller headers, content-type and user-agent; 200 is ok', async () => {
    const receiver = await startReceiver((_req, res) => res.end('thanks'));
    const result = await newSender().send({ url: receiver.url, endpointId, headers: signingHeaders, body });

    expect(result).toMatchObject({ ok: true, statusCode: 200, responseBody: 'thanks' });
    expect(result.error).toBeUndefined();
    expect(result.startedAt).toBeInstanceOf(Date);
    expect(result.durationMs).toBeGreaterThanOrEqual(0);
    const [request] = receiver.requests;
    expect(request).toMatchObject({ method: 'POST', url: '/hook', body });
    expect(request?.headers).toMatchObject({
      ...signingHeaders,
      'content-type': 'application/json',
      'user-agent': 'DevCard-Webhooks/test',
    });
  });

  it('records a 500 with its body as a failure', async () => {
    const receiver = await startReceiver((_req, res) => {
      res.statusCode = 500;
      res.end('boom');
    });
    const result = await newSender().send({ url: receiver.url, endpointId, headers: signingHeaders, body });
    expect(result).toMatchObject({ ok: false, statusCode: 500, responseBody: 'boom' });
  });

  it('keeps only the first 2048 bytes of a larger body', async () => {
    const receiver = await startReceiver((_req, res) => res.end('x'.repeat(5_000)));
    const result = await newSender().send({ url: receiver.url, endpointId, headers: signingHeaders, body });
    expect(result.ok).toBe(true);
    expect(result.responseBody).toBe('x'.repeat(2048));
  });

  it('never cuts a multi-byte character in half at the limit', async () => {
    const receiver = await startReceiver((_req, res) => res.end(`${'x'.repeat(2047)}é`));
    const result = await newSender().send({ url: receiver.url, endpointId, headers: signingHeaders, body });
    expect(result.responseBody).toBe('x'.repeat(2047));
  });

  it('stops reading an endless body instead of buffering it', async () => {
    const receiver = await startReceiver((_req, res) => {
      const chunk = 'y'.repeat(64 * 1024);
      const pump = (): void => {
        while (!res.destroyed && res.write(chunk));
        if (!res.destroyed) res.once('drain', pump);
      };
      pump();
    });
    const result = await newSender({ timeoutMs: 5_000 }).send({ url: receiver.url, endpointId, headers: signingHeaders, body });
    expect(result).toMatchObject({ ok: true, statusCode: 200 });
    expect(result.responseBody).toHaveLength(2048);
  });

  it('does not follow a redirect: failure with the status, target never contacted', async () => {
    const target = await startReceiver((_req, res) => res.end('should not be here'));
    const redirecting = await startReceiver((_req, res) => {
      res.writeHead(302, { location: target.url });
      res.end();
    });
    const result = await newSender().send({ url: redirecting.url, endpointId, headers: signingHeaders, body });
    expect(result).toMatchObject({ ok: false, statusCode: 302, error: 'redirect (302) not followed' });
    expect(target.connections).toBe(0);
    expect(target.requests).toHaveLength(0);
  });

  it('times out a receiver that never answers', async () => {
    const receiver = await startReceiver(() => undefined);
    const started = Date.now();
    const result = await newSender({ timeoutMs: 300 }).send({ url: receiver.url, endpointId, headers: signingHeaders, body });
    expect(result.ok).toBe(false);
    expect(result.error).toBe('timeout after 300 ms');
    // Far below "never", far above 300 ms on a loaded machine.
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('times out a receiver that answers headers and then stalls the body', async () => {
    const receiver = await startReceiver((_req, res) => res.writeHead(200).write('partial'));
    const result = await newSender({ timeoutMs: 300 }).send({ url: receiver.url, endpointId, headers: signingHeaders, body });
    expect(result).toMatchObject({ ok: false, statusCode: 200, error: 'timeout after 300 ms' });
  });

  it('never sends late a request whose time ran out while it waited for a connection', async () => {
    const receiver = await startReceiver(() => undefined);
    const sender = newSender({ timeoutMs: 300, maxConnectionsPerEndpoint: 1 });
    // The second waits behind the first for the endpoint's only connection, which is freed
    // (destroyed) only when the first times out: by then the second's time is up as well.
    const results = await Promise.all([1, 2].map(() => sender.send({ url: receiver.url, endpointId, headers: signingHeaders, body })));
    expect(results.map((result) => result.error)).toEqual(['timeout after 300 ms', 'timeout after 300 ms']);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(receiver.requests).toHaveLength(1);
  });

  it('counts a DNS lookup that hangs against the timeout', async () => {
    const lookup: LookupFn = () => new Promise(() => undefined);
    const result = await newSender({ timeoutMs: 200, lookup }).send({
      url: 'http://slow-dns.example.test/x',
      endpointId,
      headers: signingHeaders,
      body,
    });
    expect(result).toMatchObject({ ok: false, error: 'timeout after 200 ms' });
  });

  it('reports a refused connection', async () => {
    const closed = await startReceiver(() => undefined);
    await cleanups.pop()?.();
    const result = await newSender().send({ url: closed.url, endpointId, headers: signingHeaders, body });
    expect(result).toMatchObject({ ok: false, error: 'connection refused' });
    expect(result.statusCode).toBeUndefined();
  });

  it('parses Retry-After on a 429', async () => {
    const receiver = await startReceiver((_req, res) => {
      res.writeHead(429, { 'retry-after': '120' });
      res.end('slow down');
    });
    const result = await newSender().send({ url: receiver.url, endpointId, headers: signingHeaders, body });
    expect(result).toMatchObject({ ok: false, statusCode: 429, retryAfterMs: 120_000, responseBody: 'slow down' });
  });

  it('refuses a name that resolves to a private address, without connecting', async () => {
    const receiver = await startReceiver((_req, res) => res.end());
    const lookup = countingLookup([{ address: '127.0.0.1', family: 4 }]);
    const sender = newSender({ allowPrivateNetworks: false, lookup });
    const result = await sender.send({ url: `https://rebind.example:${receiver.port}/hook`, endpointId, headers: signingHeaders, body });
    expect(result.ok).toBe(false);
    expect(result.error).toBe('destination not allowed: rebind.example resolves to a non-public address');
    expect(lookup.calls).toEqual(['rebind.example']);
    expect(receiver.connections).toBe(0);
  });

  it('connects to the vetted address with the original Host header, resolving once', async () => {
    const receiver = await startReceiver((_req, res) => res.end('ok'));
    // .test never resolves in real DNS: reaching the server proves the vetted IP was used.
    const lookup = countingLookup([{ address: '127.0.0.1', family: 4 }]);
    const result = await newSender({ lookup }).send({
      url: `http://hooks.example.test:${receiver.port}/x?a=1`,
      endpointId,
      headers: signingHeaders,
      body,
    });
    expect(result).toMatchObject({ ok: true, statusCode: 200 });
    expect(lookup.calls).toEqual(['hooks.example.test']);
    expect(receiver.requests[0]?.url).toBe('/x?a=1');
    expect(receiver.requests[0]?.headers.host).toBe(`hooks.example.test:${receiver.port}`);
  });

  it('sends the original hostname as TLS SNI while connecting to the vetted address', async () => {
    const serverNames: string[] = [];
    const tlsServer = createTlsServer({
      SNICallback: (servername, callback) => {
        serverNames.push(servername);
        callback(new Error('no certificate in this test'));
      },
    });
    tlsServer.on('tlsClientError', () => undefined);
    tlsServer.listen(0, '127.0.0.1');
    await once(tlsServer, 'listening');
    cleanups.push(async () => {
      tlsServer.close();
      await once(tlsServer, 'close');
    });
    const { port } = tlsServer.address() as AddressInfo;
    const lookup = countingLookup([{ address: '127.0.0.1', family: 4 }]);

    const result = await newSender({ lookup }).send({
      url: `https://secure.example.test:${port}/x`,
      endpointId,
      headers: signingHeaders,
      body,
    });
    expect(result.ok).toBe(false);
    expect(serverNames).toEqual(['secure.example.test']);
  });

  it('reuses one keep-alive connection for sequential sends', async () => {
    const receiver = await startReceiver((_req, res) => res.end('ok'));
    const sender = newSender();
    const first = await sender.send({ url: receiver.url, endpointId, headers: signingHeaders, body });
    // undici 7 re-validates an idle keep-alive socket in the next check phase
    // (GHSA-35p6-xmwp-9g52); a send issued before then would open a second connection.
    await new Promise((resolve) => setImmediate(resolve));
    const second = await sender.send({ url: receiver.url, endpointId, headers: signingHeaders, body });
    expect([first.ok, second.ok]).toEqual([true, true]);
    expect(receiver.requests).toHaveLength(2);
    expect(receiver.connections).toBe(1);
  });

  it('returns a result, not an exception, once closed', async () => {
    const sender = newSender();
    await sender.close();
    const result = await sender.send({ url: 'http://127.0.0.1:9/x', endpointId, headers: signingHeaders, body });
    expect(result).toMatchObject({ ok: false, error: 'sender closed' });
  });
});
