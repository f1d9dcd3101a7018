import type { FastifyInstance, InjectOptions } from 'fastify';
import type { LookupFn } from '../../src/webhooks/url-policy.ts';
import { buildTestApp, type TestApp } from './app.ts';

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

export interface TestUser {
  id: string;
  username: string;
  headers: { authorization: string };
}

let userCounter = 0;

/** A user row and a token for it, without going through the host's auth routes. */
export async function createUser(t: TestApp, username = `user${++userCounter}_${Date.now().toString(36)}`): Promise<TestUser> {
  const user = await t.db.prisma.user.create({
    data: { email: `${username}@example.com`, username, displayName: username, passwordHash: 'not-a-real-hash' },
  });
  const token = t.app.signToken({ id: user.id, username });
  return { id: user.id, username, headers: { authorization: `Bearer ${token}` } };
}

/** `app.inject` as `user`. */
export function asUser(app: FastifyInstance, user: TestUser | undefined, options: InjectOptions) {
  return app.inject({ ...options, headers: { ...(user?.headers ?? {}), ...(options.headers ?? {}) } });
}
