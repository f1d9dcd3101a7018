import type { FastifyInstance } from 'fastify';
import type { LookupFn } from '../../src/webhooks/dns-lookup.ts';
import { buildTestApp, type TestApp } from './app.ts';
import type { Session } from './users.ts';

/** A public address (RFC 5737 documentation ranges are refused by the policy); unknown names resolve to it. */
export const PUBLIC_ADDRESS = '93.184.215.14';

/** Names the fake resolver knows; anything else resolves to PUBLIC_ADDRESS, so tests never need DNS. */
export const FAKE_DNS: Record<string, Array<{ address: string; family: 4 | 6 }>> = {
  'loopback.example.com': [{ address: '127.0.0.1', family: 4 }],
  'mixed.example.com': [
    { address: PUBLIC_ADDRESS, family: 4 },
    { address: '10.1.2.3', family: 4 },
  ],
  'metadata.example.com': [{ address: '169.254.169.254', family: 4 }],
  'v6-loopback.example.com': [{ address: '::1', family: 6 }],
};

export const fakeLookup: LookupFn = async (hostname) => {
  if (hostname === 'nxdomain.example.com') throw Object.assign(new Error('not found'), { code: 'ENOTFOUND' });
  return FAKE_DNS[hostname] ?? [{ address: PUBLIC_ADDRESS, family: 4 }];
};

/**
 * Like buildTestApp, with the webhook URL policy's DNS replaced by `lookup` (fakeLookup by
 * default) and no delivery worker: the fake names resolve to real public addresses, which a
 * test must never contact.
 */
export async function buildWebhookTestApp(options: { env?: Record<string, string>; lookup?: LookupFn } = {}): Promise<TestApp> {
  return buildTestApp({ env: { WEBHOOK_WORKER: 'off', ...options.env }, lookup: options.lookup ?? fakeLookup });
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
