import { afterEach, describe, expect, it } from 'vitest';
import { buildTestApp, type TestApp } from './helpers/app.ts';

/**
 * The client address that per-address rate limits key on comes from X-Forwarded-For only when
 * TRUST_PROXY trusts the peer that sent it. The peer of `app.inject` is 127.0.0.1.
 */
const LIMIT = 5;
const ATTEMPTS = LIMIT + 3;

describe('TRUST_PROXY: which X-Forwarded-For the rate limits believe', () => {
  let t: TestApp | undefined;
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  const start = async (env: Record<string, string>) => {
    t = await buildTestApp({ env: { RATE_LIMIT_AUTH_PER_MINUTE: String(LIMIT), ...env } });
    return t.app;
  };

  /** Wrong-password logins, one per forwarded chain; the status of each. */
  const logins = async (env: Record<string, string>, forwardedFor: (i: number) => string) => {
    const app = await start(env);
    const statuses: number[] = [];
    for (let i = 0; i < ATTEMPTS; i++) {
      const res = await app.inject({
        method: 'POST',
        url: '/auth/login',
        headers: { 'x-forwarded-for': forwardedFor(i) },
        payload: { login: 'nobody', password: 'wrong-password' },
      });
      if (res.statusCode === 429) expect(res.json().error.code).toBe('RATE_LIMITED');
      statuses.push(res.statusCode);
    }
    return statuses;
  };
  const limitedAfter = [...Array(LIMIT).fill(401), ...Array(ATTEMPTS - LIMIT).fill(429)];
  const neverLimited = Array(ATTEMPTS).fill(401);
  const spoofed = (i: number) => `198.51.100.${i + 1}`;

  it('by default ignores X-Forwarded-For, in production too: a client cannot pick a fresh address per request', async () => {
    expect(await logins({ NODE_ENV: 'production' }, spoofed)).toEqual(limitedAfter);
  });

  it('honours X-Forwarded-For from a trusted address (each client has its own budget)', async () => {
    expect(await logins({ TRUST_PROXY: '127.0.0.1' }, spoofed)).toEqual(neverLimited);
    await t!.close();
    t = undefined;
    expect(await logins({ TRUST_PROXY: '10.0.0.0/8, ::1, 127.0.0.0/8' }, spoofed)).toEqual(neverLimited);
  });

  it('ignores X-Forwarded-For when the list does not include the peer', async () => {
    expect(await logins({ NODE_ENV: 'production', TRUST_PROXY: '10.0.0.0/8,fd00::/8' }, spoofed)).toEqual(limitedAfter);
  });

  it('with a hop count, takes the address the nearest proxies saw, not what the client prepended', async () => {
    // One proxy: it appends the address it saw (the same client each time) after the client's own values.
    expect(await logins({ TRUST_PROXY: '1' }, (i) => `${spoofed(i)}, 203.0.113.7`)).toEqual(limitedAfter);
    await t!.close();
    t = undefined;
    // Distinct clients behind one proxy keep distinct budgets.
    expect(await logins({ TRUST_PROXY: '1' }, (i) => `203.0.113.${i + 1}`)).toEqual(neverLimited);
    await t!.close();
    t = undefined;
    // Two proxies: the client address is the second from the right.
    expect(await logins({ TRUST_PROXY: '2' }, (i) => `${spoofed(i)}, 203.0.113.7, 10.0.0.1`)).toEqual(limitedAfter);
  });
});
