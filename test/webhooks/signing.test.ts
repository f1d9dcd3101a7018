import { createHmac, randomBytes } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';
import { decodeSecret, signPayload, signWithKeys, verifyDevcardSignature, verifyWebhook } from '../../src/webhooks/signing.ts';

const newSecret = (): string => `whsec_${randomBytes(32).toString('base64')}`;
const body = JSON.stringify({ id: 'evt_1', type: 'card.viewed', data: { cardId: null, note: 'héllo ✓' } });
const nowSeconds = (): number => Math.floor(Date.now() / 1000);

describe('signPayload', () => {
  it('produces headers the official standardwebhooks package verifies', () => {
    const secret = newSecret();
    const headers = signPayload({ secrets: [secret], webhookId: 'dlv_1', timestamp: nowSeconds(), body });
    expect(new Webhook(secret).verify(body, headers)).toEqual(JSON.parse(body));
  });

  it('signs with every secret during a rotation so a receiver holding either verifies', () => {
    const oldSecret = newSecret();
    const newer = newSecret();
    const headers = signPayload({ secrets: [newer, oldSecret], webhookId: 'dlv_2', timestamp: nowSeconds(), body });
    expect(headers['webhook-signature'].split(' ')).toHaveLength(2);
    expect(headers['x-devcard-signature'].split(',')).toHaveLength(2);
    for (const secret of [oldSecret, newer]) {
      expect(() => new Webhook(secret).verify(body, headers)).not.toThrow();
      expect(verifyWebhook({ secret, headers, body })).toEqual({ ok: true });
      expect(verifyDevcardSignature(secret, headers['x-devcard-signature'], body)).toBe(true);
    }
    expect(() => new Webhook(newSecret()).verify(body, headers)).toThrow();
  });

  it('matches the package signature exactly and echoes id and timestamp', () => {
    const secret = newSecret();
    const timestamp = 1_790_000_000;
    const headers = signPayload({ secrets: [secret], webhookId: 'dlv_3', timestamp, body });
    expect(headers['webhook-id']).toBe('dlv_3');
    expect(headers['webhook-timestamp']).toBe(String(timestamp));
    expect(headers['webhook-signature']).toBe(new Webhook(secret).sign('dlv_3', new Date(timestamp * 1000), body));
  });

  it('x-devcard-signature is the hex HMAC-SHA256 of the raw body, checkable with node:crypto', () => {
    const secret = newSecret();
    const headers = signPayload({ secrets: [secret], webhookId: 'dlv_4', timestamp: nowSeconds(), body: Buffer.from(body) });
    const key = Buffer.from(secret.slice('whsec_'.length), 'base64');
    expect(headers['x-devcard-signature']).toBe(`sha256=${createHmac('sha256', key).update(body).digest('hex')}`);
  });

  it('signWithKeys with pre-decoded keys equals signPayload', () => {
    const secrets = [newSecret(), newSecret()];
    const input = { webhookId: 'dlv_5', timestamp: nowSeconds(), body };
    expect(signWithKeys(secrets.map(decodeSecret), input)).toEqual(signPayload({ secrets, ...input }));
  });

  it('rejects a secret without key bytes', () => {
    expect(() => decodeSecret('whsec_')).toThrow();
  });
});

describe('verifyWebhook', () => {
  const secret = newSecret();
  const packageHeaders = (timestamp: Date, payload = body): Record<string, string> => ({
    'webhook-id': 'msg_1',
    'webhook-timestamp': String(Math.floor(timestamp.getTime() / 1000)),
    'webhook-signature': new Webhook(secret).sign('msg_1', timestamp, payload),
  });

  it("accepts what the package's sign produces, with headers in any case", () => {
    const headers = packageHeaders(new Date());
    expect(verifyWebhook({ secret, headers, body })).toEqual({ ok: true });
    const upper = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toUpperCase(), v]));
    expect(verifyWebhook({ secret, headers: upper, body: Buffer.from(body) })).toEqual({ ok: true });
  });

  it('accepts a matching signature among unknown versions and other signatures', () => {
    const headers = packageHeaders(new Date());
    headers['webhook-signature'] = `v1a,abc v1,${Buffer.alloc(32).toString('base64')} ${headers['webhook-signature']}`;
    expect(verifyWebhook({ secret, headers, body })).toEqual({ ok: true });
  });

  it('rejects a tampered body', () => {
    const result = verifyWebhook({ secret, headers: packageHeaders(new Date()), body: body.replace('evt_1', 'evt_2') });
    expect(result).toEqual({ ok: false, reason: 'no matching signature' });
  });

  it('rejects a wrong secret', () => {
    expect(verifyWebhook({ secret: newSecret(), headers: packageHeaders(new Date()), body }).ok).toBe(false);
  });

  it('rejects a timestamp older than 5 minutes and one more than 5 minutes ahead', () => {
    const now = nowSeconds();
    const stale = packageHeaders(new Date((now - 301) * 1000));
    const future = packageHeaders(new Date((now + 301) * 1000));
    expect(verifyWebhook({ secret, headers: stale, body, now })).toEqual({ ok: false, reason: 'timestamp too old' });
    expect(verifyWebhook({ secret, headers: future, body, now })).toEqual({ ok: false, reason: 'timestamp too far in the future' });
    const edge = packageHeaders(new Date((now - 300) * 1000));
    expect(verifyWebhook({ secret, headers: edge, body, now }).ok).toBe(true);
  });

  it('honours a custom tolerance', () => {
    const now = nowSeconds();
    const headers = packageHeaders(new Date((now - 60) * 1000));
    expect(verifyWebhook({ secret, headers, body, now, toleranceSeconds: 30 }).ok).toBe(false);
  });

  it('rejects missing, repeated or malformed headers', () => {
    const headers = packageHeaders(new Date());
    expect(verifyWebhook({ secret, headers: { ...headers, 'webhook-id': undefined }, body }).ok).toBe(false);
    expect(verifyWebhook({ secret, headers: { ...headers, 'webhook-id': ['a', 'b'] }, body }).ok).toBe(false);
    expect(verifyWebhook({ secret, headers: { ...headers, 'webhook-timestamp': '12e3' }, body }).ok).toBe(false);
    expect(verifyWebhook({ secret, headers: { ...headers, 'webhook-signature': 'v1' }, body }).ok).toBe(false);
  });
});

describe('verifyDevcardSignature', () => {
  const secret = newSecret();
  const header = signPayload({ secrets: [secret], webhookId: 'd', timestamp: 0, body })['x-devcard-signature'];

  it('accepts the right signature, as a string or a repeated header', () => {
    expect(verifyDevcardSignature(secret, header, body)).toBe(true);
    expect(verifyDevcardSignature(secret, ['sha256=00', header], body)).toBe(true);
  });

  it('rejects a tampered body, a wrong secret, a missing header and a wrong scheme', () => {
    expect(verifyDevcardSignature(secret, header, `${body} `)).toBe(false);
    expect(verifyDevcardSignature(newSecret(), header, body)).toBe(false);
    expect(verifyDevcardSignature(secret, undefined, body)).toBe(false);
    expect(verifyDevcardSignature(secret, header.replace('sha256=', 'sha1='), body)).toBe(false);
  });
});
