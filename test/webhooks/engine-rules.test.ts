import { describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import { decideAttemptOutcome, describeFailure } from '../../src/webhooks/delivery/attempt-outcome.ts';
import { coalescingOf } from '../../src/webhooks/coalesce.ts';
import { EndpointKeyCache } from '../../src/webhooks/delivery/endpoint-keys.ts';
import { buildEnvelope, renderBody } from '../../src/webhooks/envelope.ts';
import { generateEndpointSecret, SecretBox, secretFingerprint } from '../../src/webhooks/secrets.ts';
import { decodeSecret } from '../../src/webhooks/signing.ts';

const OWNER = '8f14e45f-ceea-4e7a-9c1b-2d3f4a5b6c7d';
const CARD = '3c59dc04-8e2b-4f6e-a1d2-7b8c9d0e1f23';
const VIEWER = { id: 'a87ff679-a2f3-4e1c-8b5d-6e7f8a9b0c1d', username: 'ada' };
const EVENT = 'e4da3b7f-bbce-4345-9d77-7a1b2c3d4e5f';
const AT = new Date('2026-11-28T12:00:00.000Z');

/** What JSONB hands back: keys sorted by length, then bytewise. */
function jsonbOrder(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(jsonbOrder);
  if (typeof value !== 'object' || value === null) return value;
  const keys = Object.keys(value).sort((a, b) => a.length - b.length || (a < b ? -1 : a > b ? 1 : 0));
  return Object.fromEntries(keys.map((k) => [k, jsonbOrder((value as Record<string, unknown>)[k])]));
}

describe('renderBody', () => {
  it('renders card.viewed in the contract order whatever order the stored keys come back in', () => {
    const stored = jsonbOrder(buildEnvelope(EVENT, 'card.viewed', { source: 'qr', viewer: VIEWER, cardId: CARD, userId: OWNER }, AT));
    expect(renderBody(EVENT, 'card.viewed', stored)).toBe(
      `{"id":"${EVENT}","type":"card.viewed","timestamp":"2026-11-28T12:00:00.000Z",` +
        `"data":{"userId":"${OWNER}","cardId":"${CARD}","viewer":{"id":"${VIEWER.id}","username":"ada"},"source":"qr"}}`,
    );
  });

  it('keeps nulls for the profile view and anonymous viewers', () => {
    const stored = jsonbOrder(buildEnvelope(EVENT, 'card.viewed', { userId: OWNER, cardId: null, viewer: null, source: 'link' }, AT));
    expect(renderBody(EVENT, 'card.viewed', stored)).toBe(
      `{"id":"${EVENT}","type":"card.viewed","timestamp":"2026-11-28T12:00:00.000Z","data":{"userId":"${OWNER}","cardId":null,"viewer":null,"source":"link"}}`,
    );
  });

  it('renders contact.saved and webhook.test in the contract order', () => {
    const saved = jsonbOrder(buildEnvelope(EVENT, 'contact.saved', { savedBy: VIEWER, cardId: CARD, userId: OWNER }, AT));
    expect(renderBody(EVENT, 'contact.saved', saved)).toBe(
      `{"id":"${EVENT}","type":"contact.saved","timestamp":"2026-11-28T12:00:00.000Z",` +
        `"data":{"userId":"${OWNER}","cardId":"${CARD}","savedBy":{"id":"${VIEWER.id}","username":"ada"}}}`,
    );
    const test = jsonbOrder(buildEnvelope(EVENT, 'webhook.test', { endpointId: CARD }, AT));
    expect(renderBody(EVENT, 'webhook.test', test)).toBe(
      `{"id":"${EVENT}","type":"webhook.test","timestamp":"2026-11-28T12:00:00.000Z","data":{"endpointId":"${CARD}"}}`,
    );
  });
});

describe('coalesced card.viewed', () => {
  const GRACE = { id: 'c9f0f895-fb98-4b91-8a4c-5d6e7f809a1b', username: 'grace' };

  it('opens with the envelope of the first view and a count of one; one key per card and one for the profile', () => {
    const envelope = buildEnvelope(EVENT, 'card.viewed', { userId: OWNER, cardId: CARD, viewer: VIEWER, source: 'qr' }, AT);
    const opened = coalescingOf(envelope)!;
    expect(opened.payload).toEqual({
      ...envelope,
      data: { ...envelope.data, count: 1, firstViewedAt: AT.toISOString(), lastViewedAt: AT.toISOString(), viewers: [VIEWER] },
    });
    const anonymous = coalescingOf(buildEnvelope(EVENT, 'card.viewed', { userId: OWNER, cardId: CARD, viewer: null, source: 'link' }, AT))!;
    expect(anonymous.payload.data).toMatchObject({ count: 1, viewers: [] });
    expect(anonymous.key).toBe(opened.key);
    const profile = coalescingOf(buildEnvelope(EVENT, 'card.viewed', { userId: OWNER, cardId: null, viewer: null, source: 'link' }, AT))!;
    const otherCard = coalescingOf(
      buildEnvelope(EVENT, 'card.viewed', { userId: OWNER, cardId: OWNER, viewer: null, source: 'link' }, AT),
    )!;
    expect(new Set([opened.key, profile.key, otherCard.key]).size).toBe(3);
  });

  it('never coalesces contact.saved or webhook.test', () => {
    expect(coalescingOf(buildEnvelope(EVENT, 'contact.saved', { userId: OWNER, cardId: CARD, savedBy: VIEWER }, AT))).toBeUndefined();
    expect(coalescingOf(buildEnvelope(EVENT, 'webhook.test', { endpointId: CARD }, AT))).toBeUndefined();
  });

  it('renders the coalesced fields after the contract ones, in a fixed order, only when stored', () => {
    const stored = jsonbOrder({
      ...buildEnvelope(EVENT, 'card.viewed', { userId: OWNER, cardId: CARD, viewer: VIEWER, source: 'qr' }, AT),
      data: {
        viewers: [
          { username: 'ada', id: VIEWER.id },
          { username: 'grace', id: GRACE.id },
        ],
        lastViewedAt: '2026-11-28T12:00:54.210Z',
        firstViewedAt: '2026-11-28T12:00:00.000Z',
        count: 7,
        source: 'qr',
        viewer: VIEWER,
        cardId: CARD,
        userId: OWNER,
      },
    });
    expect(renderBody(EVENT, 'card.viewed', stored)).toBe(
      `{"id":"${EVENT}","type":"card.viewed","timestamp":"2026-11-28T12:00:00.000Z",` +
        `"data":{"userId":"${OWNER}","cardId":"${CARD}","viewer":{"id":"${VIEWER.id}","username":"ada"},"source":"qr",` +
        `"count":7,"firstViewedAt":"2026-11-28T12:00:00.000Z","lastViewedAt":"2026-11-28T12:00:54.210Z",` +
        `"viewers":[{"id":"${VIEWER.id}","username":"ada"},{"id":"${GRACE.id}","username":"grace"}]}}`,
    );
  });
});

describe('decideAttemptOutcome', () => {
  const schedule = [1000, 2000, 4000];
  const noJitter = () => 0.5;

  it('succeeds on ok, disables on 410, retries while the schedule lasts, then fails', () => {
    expect(decideAttemptOutcome({ result: { ok: true, statusCode: 204 }, attemptsMade: 4, scheduleMs: schedule })).toEqual({
      outcome: 'success',
    });
    expect(decideAttemptOutcome({ result: { ok: false, statusCode: 410 }, attemptsMade: 1, scheduleMs: schedule })).toEqual({
      outcome: 'gone',
    });
    expect(
      decideAttemptOutcome({ result: { ok: false, statusCode: 500 }, attemptsMade: 1, scheduleMs: schedule, random: noJitter }),
    ).toEqual({
      outcome: 'retry',
      delayMs: 1000,
    });
    expect(decideAttemptOutcome({ result: { ok: false }, attemptsMade: 3, scheduleMs: schedule, random: noJitter })).toEqual({
      outcome: 'retry',
      delayMs: 4000,
    });
    expect(decideAttemptOutcome({ result: { ok: false, statusCode: 500 }, attemptsMade: 4, scheduleMs: schedule })).toEqual({
      outcome: 'failed',
    });
  });

  it('waits at least Retry-After on 429 and 503', () => {
    const result = { ok: false, statusCode: 429, retryAfterMs: 90_000 };
    expect(decideAttemptOutcome({ result, attemptsMade: 1, scheduleMs: schedule, random: noJitter })).toEqual({
      outcome: 'retry',
      delayMs: 90_000,
    });
    expect(
      decideAttemptOutcome({ result: { ...result, statusCode: 500 }, attemptsMade: 1, scheduleMs: schedule, random: noJitter }),
    ).toEqual({
      outcome: 'retry',
      delayMs: 1000,
    });
  });

  it('describes failures for the log', () => {
    expect(describeFailure({ ok: true, statusCode: 200 })).toBeNull();
    expect(describeFailure({ ok: false, statusCode: 500 })).toBe('HTTP 500');
    expect(describeFailure({ ok: false, error: 'connection refused' })).toBe('connection refused');
  });
});

describe('EndpointKeyCache', () => {
  const box = new SecretBox(Buffer.alloc(32, 3));
  const current = generateEndpointSecret();
  const previous = generateEndpointSecret();
  const sealedCurrent = box.seal(current);
  const sealedPrevious = box.seal(previous);

  it('decrypts an endpoint once and signs with cached keys afterwards', () => {
    const open = vi.spyOn(box, 'open');
    const cache = new EndpointKeyCache(box);
    const secrets = { endpointId: 'ep1', secretEncrypted: sealedCurrent, previousSecretEncrypted: null, previousSecretExpiresAt: null };
    for (let i = 0; i < 5; i++) expect(cache.keysFor(secrets)).toEqual([decodeSecret(current)]);
    expect(open).toHaveBeenCalledTimes(1);
    open.mockRestore();
  });

  it('uses the previous key during the grace period only, and re-decrypts after a rotation', () => {
    const cache = new EndpointKeyCache(box);
    const now = new Date('2026-11-28T12:00:00Z');
    const rotated = {
      endpointId: 'ep2',
      secretEncrypted: sealedCurrent,
      previousSecretEncrypted: sealedPrevious,
      previousSecretExpiresAt: new Date(now.getTime() + 1000),
    };
    expect(cache.keysFor(rotated, now)).toEqual([decodeSecret(current), decodeSecret(previous)]);
    expect(cache.keysFor(rotated, new Date(now.getTime() + 1000))).toEqual([decodeSecret(current)]);

    const next = generateEndpointSecret();
    const again = { ...rotated, secretEncrypted: box.seal(next), previousSecretEncrypted: sealedCurrent };
    expect(cache.keysFor(again, now)).toEqual([decodeSecret(next), decodeSecret(current)]);
    expect(cache.size).toBe(1);
  });

  it('names the signing secrets by fingerprint, in signing order, without allocating per call', () => {
    const cache = new EndpointKeyCache(box);
    const now = new Date('2026-11-28T12:00:00Z');
    const rotated = {
      endpointId: 'ep4',
      secretEncrypted: sealedCurrent,
      previousSecretEncrypted: sealedPrevious,
      previousSecretExpiresAt: new Date(now.getTime() + 1000),
    };
    const both = cache.signingKeysFor(rotated, now);
    expect(both).toEqual({
      keys: [decodeSecret(current), decodeSecret(previous)],
      fingerprints: [secretFingerprint(current), secretFingerprint(previous)],
    });
    expect(cache.signingKeysFor(rotated, now)).toBe(both);
    const expired = cache.signingKeysFor(rotated, new Date(now.getTime() + 1000));
    expect(expired).toEqual({ keys: [decodeSecret(current)], fingerprints: [secretFingerprint(current)] });
    expect(cache.signingKeysFor(rotated, new Date(now.getTime() + 2000))).toBe(expired);
  });

  it('throws when a secret cannot be opened', () => {
    const cache = new EndpointKeyCache(new SecretBox(Buffer.alloc(32, 4)));
    expect(() =>
      cache.keysFor({ endpointId: 'ep3', secretEncrypted: sealedCurrent, previousSecretEncrypted: null, previousSecretExpiresAt: null }),
    ).toThrow(/unknown key/);
  });
});

describe('WEBHOOK_SWEEP_INTERVAL_MS', () => {
  const base = { DATA_DIR: 'memory', JWT_SECRET: 'x'.repeat(40), WEBHOOK_ENCRYPTION_KEY: Buffer.alloc(32, 1).toString('base64') };

  it('defaults to 5 s and accepts milliseconds', () => {
    expect(loadConfig(base).webhooks.sweepIntervalMs).toBe(5000);
    expect(loadConfig({ ...base, WEBHOOK_SWEEP_INTERVAL_MS: '250' }).webhooks.sweepIntervalMs).toBe(250);
  });

  it('names the variable when the value is bad', () => {
    for (const value of ['soon', '0', '-5']) {
      expect(() => loadConfig({ ...base, WEBHOOK_SWEEP_INTERVAL_MS: value })).toThrow(/WEBHOOK_SWEEP_INTERVAL_MS/);
    }
  });
});
