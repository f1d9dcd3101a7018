import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../src/db/database.ts';
import {
  describeOverlap,
  endpointReceiverOnDroppedSecrets,
  extendPreviousSecret,
  PREVIOUS_SECRET_KEPT_AFTER_EXPIRY_MS,
  receiverOnDroppedSecrets,
} from '../../src/webhooks/secret-overlap.ts';
import { insertAttempt, insertDelivery } from '../helpers/deliveries.ts';
import { openQueueStore, type QueueStore } from '../helpers/queue-store.ts';

/**
 * The rotation label on a real store (both kinds), from attempt rows written as the worker
 * writes them: C is the current secret's fingerprint, P the previous one's.
 */
const C = 'cccc0000';
const P = 'pppp0000';
const T0 = Date.parse('2026-11-01T00:00:00.000Z');

/** An attempt is known by its delivery and its number. */
interface AttemptKey {
  deliveryId: string;
  attemptNumber: number;
}

describe('RECEIVER_ON_PREVIOUS_SECRET: the rule', () => {
  let fixture: QueueStore;
  let db: Database;

  beforeAll(async () => {
    fixture = await openQueueStore('overlap');
    db = fixture.db;
  });
  afterAll(async () => fixture?.close());

  let urlCounter = 0;
  async function endpoint(): Promise<string> {
    const row = await db.prisma.webhookEndpoint.create({
      data: { userId: fixture.userId, url: `https://example.com/${++urlCounter}`, secretEncrypted: 'sealed', events: ['card.viewed'] },
    });
    return row.id;
  }

  let minute = 0;
  /**
   * Attempts of one endpoint, each a minute after the one before (across calls too), each its
   * own delivery unless `sameDelivery`: [status, fingerprints that signed it]. Returns their keys.
   */
  async function history(endpointId: string, attempts: Array<[number | null, string[]]>, sameDelivery = false): Promise<AttemptKey[]> {
    const keys: AttemptKey[] = [];
    let deliveryId: string | undefined;
    for (const [i, [status, signedWith]] of attempts.entries()) {
      if (!deliveryId || !sameDelivery) {
        deliveryId = (await insertDelivery(db, { endpointId, eventType: 'webhook.test', status: 'failed' })).id;
      }
      const attemptNumber = sameDelivery ? i + 1 : 1;
      await insertAttempt(db, {
        deliveryId,
        attemptNumber,
        startedAt: new Date(T0 + minute * 60_000),
        durationMs: 5,
        responseCode: status,
        signatureTimestamp: BigInt(T0 / 1000 + minute++ * 60),
        bodyBytes: 100,
        bodySha256: '0'.repeat(64),
        signedWith,
      });
      keys.push({ deliveryId, attemptNumber });
    }
    return keys;
  }

  const labels = async (endpointId: string, attempts: AttemptKey[]) => {
    const labelled: Array<string[] | null> = [];
    for (const { deliveryId, attemptNumber } of attempts) {
      const found = await receiverOnDroppedSecrets(db.sql, endpointId, deliveryId, [attemptNumber]);
      labelled.push(found.get(attemptNumber) ?? null);
    }
    return labelled;
  };

  it('labels refusals that begin when the secret the receiver accepted stopped signing', async () => {
    const ep = await endpoint();
    const ids = await history(ep, [
      [200, [C]],
      [200, [C, P]],
      [204, [C, P]],
      [401, [C]],
      [500, [C]],
      [403, [C]],
    ]);
    expect(await labels(ep, ids)).toEqual([null, null, null, [P], null, [P]]);
    expect(await endpointReceiverOnDroppedSecrets(db.sql, ep)).toEqual([P]);
  });

  it('labels retries of one delivery alike', async () => {
    const ep = await endpoint();
    await history(ep, [[200, [C, P]]]);
    const retries = await history(
      ep,
      [
        [401, [C]],
        [401, [C]],
        [401, [C]],
      ],
      true,
    );
    expect(await labels(ep, retries)).toEqual([[P], [P], [P]]);
  });

  it('also labels a receiver left on a secret rotated away with no grace period', async () => {
    const ep = await endpoint();
    const ids = await history(ep, [
      [200, [P]],
      [401, [C]],
    ]);
    expect(await labels(ep, ids)).toEqual([null, [P]]);
  });

  it('does not label a receiver that refused requests still signed with that secret too', async () => {
    const ep = await endpoint();
    const ids = await history(ep, [
      [200, [C, P]],
      [401, [C, P]],
      [401, [C]],
    ]);
    expect(await labels(ep, ids)).toEqual([null, null, null]);
  });

  it('does not label refusals when the signing secrets did not change since the last success', async () => {
    const ep = await endpoint();
    const ids = await history(ep, [
      [200, [C]],
      [401, [C]],
      [403, [C]],
    ]);
    expect(await labels(ep, ids)).toEqual([null, null, null]);
  });

  it('stops labelling once the receiver accepted the current secret alone', async () => {
    const ep = await endpoint();
    const ids = await history(ep, [
      [200, [C, P]],
      [401, [C]],
      [200, [C]],
      [401, [C]],
    ]);
    expect(await labels(ep, ids)).toEqual([null, [P], null, null]);
    expect(await endpointReceiverOnDroppedSecrets(db.sql, ep)).toEqual([]);
  });

  it('needs an accepted attempt to go on, and ignores other endpoints and unrecorded attempts', async () => {
    const never = await endpoint();
    expect(
      await labels(
        never,
        await history(never, [
          [401, [C, P]],
          [401, [C]],
        ]),
      ),
    ).toEqual([null, null]);

    const other = await endpoint();
    await history(other, [[200, [C, P]]]);
    const ep = await endpoint();
    const ids = await history(ep, [
      [500, [C, P]],
      [401, [C]],
      [401, []],
    ]);
    expect(await labels(ep, ids)).toEqual([null, null, null]);
    // Another endpoint's attempt is not judged as this endpoint's.
    const elsewhere = await history(other, [[401, [C]]]);
    expect(await labels(ep, elsewhere)).toEqual([null]);
    expect(await labels(other, elsewhere)).toEqual([[P]]);
  });

  it('judges the endpoint by its latest accepted or refused attempt, not by later errors', async () => {
    const ep = await endpoint();
    expect(await endpointReceiverOnDroppedSecrets(db.sql, ep)).toEqual([]);
    await history(ep, [
      [200, [C, P]],
      [401, [C]],
      [500, [C]],
      [null, [C]],
    ]);
    expect(await endpointReceiverOnDroppedSecrets(db.sql, ep)).toEqual([P]);
    await history(ep, [[200, [C]]]);
    expect(await endpointReceiverOnDroppedSecrets(db.sql, ep)).toEqual([]);
  });
});

describe('extending the previous secret', () => {
  let fixture: QueueStore;
  let db: Database;

  beforeAll(async () => {
    fixture = await openQueueStore('extend');
    db = fixture.db;
  });
  afterAll(async () => fixture?.close());

  let urlCounter = 0;
  async function endpoint(previous: { sealed: string; expiresAt: Date } | null, userId = fixture.userId): Promise<string> {
    const row = await db.prisma.webhookEndpoint.create({
      data: {
        userId,
        url: `https://example.com/${++urlCounter}`,
        secretEncrypted: 'sealed-current',
        previousSecretEncrypted: previous?.sealed ?? null,
        previousSecretExpiresAt: previous?.expiresAt ?? null,
        events: ['card.viewed'],
      },
    });
    return row.id;
  }
  const HOUR = 3_600_000;

  it('makes an expired previous secret sign again until the new time, while it is kept', async () => {
    const now = new Date();
    const ep = await endpoint({ sealed: 'sealed-previous', expiresAt: new Date(now.getTime() - 2 * HOUR) });
    const until = new Date(now.getTime() + 24 * HOUR);
    expect(await extendPreviousSecret(db.sql, { userId: fixture.userId, endpointId: ep, until, now })).toEqual({
      expiresAt: until,
      sealedPrevious: 'sealed-previous',
    });
    expect((await db.prisma.webhookEndpoint.findUniqueOrThrow({ where: { id: ep } })).previousSecretExpiresAt).toEqual(until);
  });

  it('never shortens a later expiry', async () => {
    const now = new Date();
    const later = new Date(now.getTime() + 100 * HOUR);
    const ep = await endpoint({ sealed: 'sealed-previous', expiresAt: later });
    const result = await extendPreviousSecret(db.sql, {
      userId: fixture.userId,
      endpointId: ep,
      until: new Date(now.getTime() + HOUR),
      now,
    });
    expect(result?.expiresAt).toEqual(later);
  });

  it("has nothing to extend without a kept previous secret, or on another user's endpoint", async () => {
    const now = new Date();
    const until = new Date(now.getTime() + HOUR);
    const none = await endpoint(null);
    const forgotten = await endpoint({
      sealed: 'sealed-previous',
      expiresAt: new Date(now.getTime() - PREVIOUS_SECRET_KEPT_AFTER_EXPIRY_MS - 1000),
    });
    const kept = await endpoint({
      sealed: 'sealed-previous',
      expiresAt: new Date(now.getTime() - PREVIOUS_SECRET_KEPT_AFTER_EXPIRY_MS + 60_000),
    });
    for (const endpointId of [none, forgotten]) {
      expect(await extendPreviousSecret(db.sql, { userId: fixture.userId, endpointId, until, now }), endpointId).toBeUndefined();
    }
    expect(await extendPreviousSecret(db.sql, { userId: randomUUID(), endpointId: kept, until, now })).toBeUndefined();
    expect(await extendPreviousSecret(db.sql, { userId: fixture.userId, endpointId: kept, until, now })).toBeDefined();
  });
});

describe('describeOverlap', () => {
  const now = new Date('2026-11-10T00:00:00.000Z');
  const endpointId = randomUUID();
  const base = { endpointId, now, receiverOnSecrets: [] as string[] };

  it('is null without a previous secret', () => {
    expect(describeOverlap({ ...base, previous: null })).toBeNull();
  });

  it('offers extending when the receiver is on the expired previous secret', () => {
    const expiresAt = new Date(now.getTime() - 3_600_000);
    const overlap = describeOverlap({ ...base, previous: { expiresAt, fingerprint: P }, receiverOnSecrets: [P] });
    expect(overlap).toEqual({
      fingerprint: P,
      expiresAt,
      active: false,
      canExtend: true,
      extendableUntil: new Date(expiresAt.getTime() + PREVIOUS_SECRET_KEPT_AFTER_EXPIRY_MS),
      receiverOnPreviousSecret: true,
      message: expect.stringContaining(`POST /api/webhooks/${endpointId}/extend-previous-secret`),
    });
    expect(overlap!.message).toMatch(/still on the previous secret \(pppp0000\)/);
  });

  it('makes no offer when the receiver is fine, on another secret, the overlap already runs, or it is too late', () => {
    const expired = { expiresAt: new Date(now.getTime() - 3_600_000), fingerprint: P };
    expect(describeOverlap({ ...base, previous: expired })).toMatchObject({
      receiverOnPreviousSecret: false,
      message: null,
      canExtend: true,
    });
    expect(describeOverlap({ ...base, previous: expired, receiverOnSecrets: ['00000000'] })).toMatchObject({
      receiverOnPreviousSecret: false,
      message: null,
    });
    const running = { expiresAt: new Date(now.getTime() + 3_600_000), fingerprint: P };
    expect(describeOverlap({ ...base, previous: running, receiverOnSecrets: [P] })).toMatchObject({
      active: true,
      receiverOnPreviousSecret: true,
      message: null,
    });
    const old = { expiresAt: new Date(now.getTime() - PREVIOUS_SECRET_KEPT_AFTER_EXPIRY_MS - 1), fingerprint: P };
    expect(describeOverlap({ ...base, previous: old, receiverOnSecrets: [P] })).toMatchObject({ canExtend: false, message: null });
  });
});
