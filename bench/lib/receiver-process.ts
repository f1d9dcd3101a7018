/**
 * The webhook receiver, in its own process so its CPU is not the bench driver's: node:http on
 * 127.0.0.1, one port per endpoint (as separate receivers would be), verifying both signatures
 * of every request with the project's own signing.ts and counting deliveries by id.
 */
import { once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { verifyDevcardSignature, verifyWebhook } from '../../src/webhooks/signing.ts';
import { nowMs } from './clock.ts';

export type ReceiverRequest =
  { type: 'secrets'; secrets: Record<string, string> } | { type: 'reset'; record: boolean } | { type: 'stats' } | { type: 'records' };

export interface ReceiverStats {
  received: number;
  unique: number;
  duplicates: number;
  badSignatures: number;
  firstAt: number;
  lastAt: number;
}

/** One received request, kept only while recording (latency scenario). */
export interface ReceivedRecord {
  receivedAt: number;
  /** Envelope `timestamp`: when the service dispatched the event. */
  dispatchedAt: number;
  cardId: string | null;
}

export type ReceiverReply =
  | { type: 'ports'; ports: number[] }
  | { type: 'stats'; stats: ReceiverStats }
  | { type: 'records'; records: ReceivedRecord[] }
  | { type: 'ok' };

const portCount = Number(process.argv[2] ?? '1');
let secrets = new Map<string, string>();
let seen = new Set<string>();
let stats = emptyStats();
let records: ReceivedRecord[] | undefined;

function emptyStats(): ReceiverStats {
  return { received: 0, unique: 0, duplicates: 0, badSignatures: 0, firstAt: Number.NaN, lastAt: Number.NaN };
}

function handle(req: IncomingMessage, res: ServerResponse): void {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    const receivedAt = nowMs();
    const body = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
    const secret = secrets.get(req.url ?? '');
    const valid =
      secret !== undefined &&
      verifyWebhook({ secret, headers: req.headers, body }).ok &&
      verifyDevcardSignature(secret, req.headers['x-devcard-signature'], body);
    if (!valid) {
      stats.badSignatures++;
      res.writeHead(401).end();
      return;
    }
    stats.received++;
    if (Number.isNaN(stats.firstAt)) stats.firstAt = receivedAt;
    stats.lastAt = receivedAt;
    const id = String(req.headers['webhook-id']);
    if (seen.has(id)) stats.duplicates++;
    else seen.add(id);
    if (records) {
      const envelope = JSON.parse(body.toString('utf8')) as { timestamp: string; data: { cardId?: string | null } };
      records.push({ receivedAt, dispatchedAt: Date.parse(envelope.timestamp), cardId: envelope.data.cardId ?? null });
    }
    res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
  });
}

function reply(message: ReceiverReply): void {
  process.send?.(message);
}

process.on('message', (message: ReceiverRequest) => {
  switch (message.type) {
    case 'secrets':
      secrets = new Map(Object.entries(message.secrets));
      return reply({ type: 'ok' });
    case 'reset':
      seen = new Set();
      stats = emptyStats();
      records = message.record ? [] : undefined;
      return reply({ type: 'ok' });
    case 'stats':
      return reply({ type: 'stats', stats: { ...stats, unique: seen.size } });
    case 'records':
      return reply({ type: 'records', records: records ?? [] });
  }
});

const ports: number[] = [];
for (let i = 0; i < portCount; i++) {
  const server = createServer({ keepAliveTimeout: 60_000 }, handle);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  ports.push((server.address() as AddressInfo).port);
}
reply({ type: 'ports', ports });
