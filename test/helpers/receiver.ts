import { once } from 'node:events';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  receivedAt: number;
  /** The sender's port: which connection, hence which process, it came on. */
  remotePort: number | undefined;
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
        remotePort: req.socket.remotePort,
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
