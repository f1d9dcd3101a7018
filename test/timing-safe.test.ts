import type * as nodeCrypto from 'node:crypto';
import { createHash, timingSafeEqual } from 'node:crypto';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { hasBearerToken } from '../src/routes/metrics.ts';
import { hashPassword, verifyPassword } from '../src/services/passwords.ts';
import { signPayload, verifyDevcardSignature, verifyWebhook } from '../src/webhooks/signing.ts';
import { generateEndpointSecret } from '../src/webhooks/secrets.ts';

/**
 * Secrets and signatures are compared in constant time: each check below must go through
 * crypto.timingSafeEqual, with the candidate and the expected value, whether it matches or not.
 * (Bearer tokens are verified by @fastify/jwt → fast-jwt, whose HMAC check is timingSafeEqual too.)
 */
vi.mock('node:crypto', async (importOriginal) => {
  const actual = await importOriginal<typeof nodeCrypto>();
  return { ...actual, timingSafeEqual: vi.fn(actual.timingSafeEqual) };
});

const compared = vi.mocked(timingSafeEqual);
beforeEach(() => {
  compared.mockClear();
});

/** The values timingSafeEqual was given, as text. */
const comparisons = () =>
  compared.mock.calls.map(([a, b]) => [Buffer.from(a as Uint8Array).toString(), Buffer.from(b as Uint8Array).toString()]);

describe('constant-time comparisons', () => {
  const secret = generateEndpointSecret();
  const body = '{"id":"evt_1","type":"webhook.test"}';
  const now = Math.floor(Date.now() / 1000);
  const headers = signPayload({ secrets: [secret], webhookId: 'dlv_1', timestamp: now, body });
  const standard = headers['webhook-signature'].slice('v1,'.length);
  const devcard = headers['x-devcard-signature'].slice('sha256='.length);
  /** Same length, one character changed. */
  const flip = (s: string) => (s[0] === '0' ? '1' : '0') + s.slice(1);

  it('Standard Webhooks signatures (verifyWebhook)', () => {
    expect(verifyWebhook({ secret, headers, body, now })).toEqual({ ok: true });
    expect(comparisons()).toContainEqual([standard, standard]);
    compared.mockClear();
    const forged = { ...headers, 'webhook-signature': `v1,${flip(standard)}` };
    expect(verifyWebhook({ secret, headers: forged, body, now }).ok).toBe(false);
    expect(comparisons()).toContainEqual([flip(standard), standard]);
  });

  it('x-devcard-signature (verifyDevcardSignature)', () => {
    expect(verifyDevcardSignature(secret, headers['x-devcard-signature'], body)).toBe(true);
    expect(comparisons()).toContainEqual([devcard, devcard]);
    compared.mockClear();
    expect(verifyDevcardSignature(secret, `sha256=${flip(devcard)}`, body)).toBe(false);
    expect(comparisons()).toContainEqual([flip(devcard), devcard]);
  });

  it('passwords (verifyPassword)', async () => {
    const stored = await hashPassword('correct horse battery');
    compared.mockClear();
    expect(await verifyPassword('correct horse battery', stored)).toBe(true);
    expect(await verifyPassword('wrong horse battery', stored)).toBe(false);
    expect(compared).toHaveBeenCalledTimes(2);
    const expected = Buffer.from(stored.split('$')[5]!, 'base64').toString();
    expect(comparisons().map(([, b]) => b)).toEqual([expected, expected]);
  });

  it('the metrics token (hasBearerToken): digests of both, so lengths never differ', () => {
    const token = 'metrics-token-that-is-long-enough-0123456789';
    const digest = (text: string) => createHash('sha256').update(text).digest().toString();
    expect(hasBearerToken(`Bearer ${token}`, token)).toBe(true);
    expect(hasBearerToken('Bearer short', token)).toBe(false);
    expect(comparisons()).toEqual([
      [digest(token), digest(token)],
      [digest('short'), digest(token)],
    ]);
  });
});
