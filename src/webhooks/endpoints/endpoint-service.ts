import type { Config } from '../../config.ts';
import type { Database } from '../../db/database.ts';
import { isPrismaError } from '../../db/prisma-errors.ts';
import { AppError } from '../../errors.ts';
import type { Prisma } from '../../generated/prisma/client.ts';
import { isStorableText } from '../../storable-text.ts';
import { ENDPOINT_CHANGED_CHANNEL } from '../queue/channels.ts';
import { describeOverlap, endpointReceiverOnDroppedSecrets } from '../secret-overlap.ts';
import { generateEndpointSecret, sealedSecretFingerprint, type SecretBox } from '../secrets.ts';
import { checkWebhookUrl } from '../url-policy.ts';
import type { LookupFn } from '../dns-lookup.ts';
import { endpointNotFound, findOwnEndpoint } from './find-own-endpoint.ts';
import { assertOwnCards, DEFAULT_CARD_TABLE, ownCardsStatement, type CardTable } from './own-cards.ts';
import {
  createEndpointInput,
  endpointSelect,
  parseInput,
  updateEndpointInput,
  type CreatedEndpointData,
  type CreateEndpointInput,
  type EndpointData,
  type EndpointDetail,
  type UpdateEndpointInput,
} from './schemas.ts';
import { isUuid } from '../../ids.ts';

/** What `isActive: false` records, so the user can tell their own pause from an automatic disable. */
export const DISABLED_BY_USER = 'disabled by user';

export interface EndpointServiceDeps {
  db: Database;
  config: Pick<Config, 'webhooks'>;
  secretBox: SecretBox;
  /** DNS resolver for the URL policy; tests inject one. */
  lookup?: LookupFn;
  /** Where the host keeps its cards, whose ids `cardIds` may list (DEFAULT_CARD_TABLE when absent). */
  cards?: CardTable;
  /**
   * Called once a change of an endpoint's url, secrets or isActive, or its deletion, is
   * committed, before the service returns: the in-process worker stops sending with what it
   * held (plugin.ts wires it). Workers elsewhere hear of it on ENDPOINT_CHANGED_CHANNEL.
   */
  onEndpointChanged?: (endpointId: string) => void;
}

/** A user's webhook endpoints: create (within the per-user limit), read, change, delete. No HTTP here; routes call it. */
export class WebhookEndpointService {
  readonly #db: Database;
  readonly #config: Pick<Config, 'webhooks'>;
  readonly #secretBox: SecretBox;
  readonly #lookup: LookupFn | undefined;
  readonly #ownCards: string;
  readonly #onEndpointChanged: (endpointId: string) => void;

  constructor(deps: EndpointServiceDeps) {
    this.#db = deps.db;
    this.#config = deps.config;
    this.#secretBox = deps.secretBox;
    this.#lookup = deps.lookup;
    this.#ownCards = ownCardsStatement(deps.cards ?? DEFAULT_CARD_TABLE);
    this.#onEndpointChanged = deps.onEndpointChanged ?? (() => {});
  }

  get #prisma() {
    return this.#db.prisma;
  }

  /** Throws URL_NOT_ALLOWED with the policy's reason. */
  async #assertUrlAllowed(url: string): Promise<void> {
    // WHATWG URL would silently drop or percent-encode these; we store the URL as given, so refuse them.
    if ([...url].some((char) => char <= '\u001f' || char === '\u007f') || !isStorableText(url)) {
      throw new AppError('URL_NOT_ALLOWED', 'URL not allowed: URL must not contain control characters or unpaired surrogates');
    }
    const check = await checkWebhookUrl(url, {
      allowPrivateNetworks: this.#config.webhooks.allowPrivateNetworks,
      lookup: this.#lookup,
      lookupTimeoutMs: this.#config.webhooks.timeoutMs,
    });
    if (!check.ok) throw new AppError('URL_NOT_ALLOWED', `URL not allowed: ${check.reason}`);
  }

  /**
   * Creates an endpoint and returns it with its secret (the only time the secret is shown).
   * The per-user limit is race-free: the transaction locks the user's row first, so
   * concurrent creates for one user count and insert one after another.
   */
  async create(userId: string, input: CreateEndpointInput): Promise<CreatedEndpointData> {
    const { url, events, description, coalesceSeconds, cardIds, maxPerSecond } = parseInput(createEndpointInput, input);
    await this.#assertUrlAllowed(url);
    const secret = generateEndpointSecret();
    const secretEncrypted = this.#secretBox.seal(secret);
    const max = this.#config.webhooks.maxEndpointsPerUser;
    try {
      const endpoint = await this.#prisma.$transaction(
        async (tx) => {
          // Only `tx` in here: the embedded store has one connection, and the outer client would wait on it forever.
          const locked = await tx.$queryRaw<Array<{ id: string }>>`SELECT id FROM users WHERE id = ${userId}::uuid FOR UPDATE`;
          if (locked.length === 0) throw new AppError('INVALID_TOKEN', 'The user of this token no longer exists');
          const count = await tx.webhookEndpoint.count({ where: { userId } });
          if (count >= max) {
            throw new AppError('ENDPOINT_LIMIT_REACHED', `You can have at most ${max} webhook endpoints`, { limit: max });
          }
          await assertOwnCards(tx, this.#ownCards, userId, cardIds);
          return tx.webhookEndpoint.create({
            data: { userId, url, events, description, coalesceSeconds, cardIds, maxPerSecond, secretEncrypted },
            select: endpointSelect,
          });
        },
        { maxWait: 15_000, timeout: 15_000 },
      );
      return { ...endpoint, secret };
    } catch (error) {
      if (isPrismaError(error, 'P2002')) throw new AppError('ENDPOINT_URL_EXISTS');
      throw error;
    }
  }

  async list(userId: string): Promise<EndpointData[]> {
    return this.#prisma.webhookEndpoint.findMany({
      where: { userId },
      select: endpointSelect,
      orderBy: [{ createdAt: 'asc' }, { id: 'asc' }],
    });
  }

  /**
   * The endpoint, when its next attempt is due (the earliest pending delivery), its secrets'
   * fingerprints, and whether its receiver still seems to be on the previous secret.
   */
  async getDetail(userId: string, endpointId: string): Promise<EndpointDetail> {
    const row = await findOwnEndpoint(this.#prisma, userId, endpointId, {
      ...endpointSelect,
      secretEncrypted: true,
      previousSecretEncrypted: true,
    });
    const { secretEncrypted, previousSecretEncrypted, ...endpoint } = row;
    const previous =
      previousSecretEncrypted !== null && endpoint.previousSecretExpiresAt !== null
        ? { expiresAt: endpoint.previousSecretExpiresAt, fingerprint: sealedSecretFingerprint(this.#secretBox, previousSecretEncrypted) }
        : null;
    const [next, receiverOnSecrets] = await Promise.all([
      this.#prisma.webhookDelivery.aggregate({ where: { endpointId, status: 'pending' }, _min: { nextRetryAt: true } }),
      // Only worth the history lookup while there is a previous secret to offer.
      previous ? endpointReceiverOnDroppedSecrets(this.#db.sql, endpointId) : [],
    ]);
    return {
      ...endpoint,
      nextAttemptAt: next._min.nextRetryAt,
      secretFingerprint: sealedSecretFingerprint(this.#secretBox, secretEncrypted),
      previousSecretOverlap: describeOverlap({ endpointId, previous, receiverOnSecrets, now: new Date() }),
    };
  }

  async get(userId: string, endpointId: string): Promise<EndpointData> {
    return findOwnEndpoint(this.#prisma, userId, endpointId, endpointSelect);
  }

  /**
   * Changes url, events, description, isActive, coalesceSeconds, cardIds or maxPerSecond. Disabling cancels the endpoint's
   * pending deliveries (they are never attempted); re-enabling clears the disable and the failure count.
   */
  async update(userId: string, endpointId: string, input: UpdateEndpointInput): Promise<EndpointData> {
    const changes = parseInput(updateEndpointInput, input);
    const current = await this.get(userId, endpointId);
    if (changes.url !== undefined && changes.url !== current.url) await this.#assertUrlAllowed(changes.url);

    const data: Prisma.WebhookEndpointUpdateInput = {};
    if (changes.url !== undefined) data.url = changes.url;
    if (changes.events !== undefined) data.events = changes.events;
    if (changes.description !== undefined) data.description = changes.description;
    // Applies to views from now on; an open coalescing delivery keeps the due time it was opened with.
    if (changes.coalesceSeconds !== undefined) data.coalesceSeconds = changes.coalesceSeconds;
    // Applies to events from now on, like events: deliveries already made stay.
    if (changes.cardIds !== undefined) data.cardIds = changes.cardIds;
    // Paces the next claim on. The pacing state stays: the turns already given are still owed, at the new rate.
    if (changes.maxPerSecond !== undefined) data.maxPerSecond = changes.maxPerSecond;
    if (changes.isActive === true) {
      Object.assign(data, { isActive: true, disabledAt: null, disabledReason: null, consecutiveFailures: 0 });
    } else if (changes.isActive === false && current.isActive) {
      // An endpoint the engine already disabled keeps the reason it was disabled for.
      Object.assign(data, { isActive: false, disabledAt: new Date(), disabledReason: DISABLED_BY_USER });
    }
    // Decided on the request, not on `current`, which a concurrent change may have outdated.
    const changesSending = changes.url !== undefined || changes.isActive !== undefined;
    if (changesSending) data.revision = { increment: 1 };

    try {
      const updated = await this.#prisma.$transaction(async (tx) => {
        if (changes.cardIds !== undefined) await assertOwnCards(tx, this.#ownCards, userId, changes.cardIds);
        const row = await tx.webhookEndpoint.update({ where: { id: endpointId }, data, select: endpointSelect });
        if (changes.isActive === false) await cancelPendingDeliveries(tx, endpointId);
        if (changesSending) await announceEndpointChange(tx, endpointId);
        return row;
      });
      if (changesSending) this.#onEndpointChanged(endpointId);
      return updated;
    } catch (error) {
      if (isPrismaError(error, 'P2002')) throw new AppError('ENDPOINT_URL_EXISTS');
      if (isPrismaError(error, 'P2025')) throw endpointNotFound();
      throw error;
    }
  }

  /** Deletes the endpoint; its deliveries and their attempts go with it (the trigger webhook_endpoints_deleted). */
  async delete(userId: string, endpointId: string): Promise<void> {
    if (!isUuid(endpointId)) throw endpointNotFound();
    const rows = await this.#db.sql.query<{ id: string }>(
      `WITH deleted AS (DELETE FROM webhook_endpoints WHERE id = $1::uuid AND user_id = $2::uuid RETURNING id)
       SELECT id, pg_notify('${ENDPOINT_CHANGED_CHANNEL}', id::text) FROM deleted`,
      [endpointId, userId],
    );
    if (rows.length === 0) throw endpointNotFound();
    this.#onEndpointChanged(endpointId);
  }
}

/** Tells workers in other processes, at commit, that the endpoint's sending configuration changed. */
async function announceEndpointChange(tx: Prisma.TransactionClient, endpointId: string): Promise<void> {
  await tx.$executeRaw`SELECT pg_notify(${ENDPOINT_CHANGED_CHANNEL}, ${endpointId})`;
}

/**
 * Pending deliveries of a disabled endpoint will never be attempted. A row a worker holds under
 * a live lease is left to it (contract: an attempt on the wire finishes and is logged): the
 * change announced with the disable makes the worker start nothing more of the endpoint and hand
 * back what it did not start, which a claim then cancels; so does an expired lease.
 * An open coalescing delivery is closed with them, so views after a re-enable open a new one.
 */
export async function cancelPendingDeliveries(tx: Prisma.TransactionClient, endpointId: string): Promise<number> {
  return tx.$executeRaw`
    WITH cancelled AS (
      DELETE FROM webhook_queue
       WHERE endpoint_id = ${endpointId}::uuid AND (claim_token IS NULL OR lease_until <= now())
       RETURNING *
    )
    INSERT INTO webhook_delivery_log (endpoint_id, id, event_id, event_type, status, attempts, error, finished_at, created_at, body)
    SELECT c.endpoint_id, c.delivery_id, c.event_id, c.event_type, 'cancelled', c.attempts,
           (SELECT x.error FROM webhook_earlier_attempts x WHERE x.delivery_id = c.delivery_id AND x.attempt_number = c.attempts),
           now(), c.created_at, c.coalesced_payload::text
    FROM cancelled c`;
}
