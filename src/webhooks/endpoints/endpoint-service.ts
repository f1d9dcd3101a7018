import { z } from 'zod';
import type { Config } from '../config.ts';
import type { Database } from '../db/database.ts';
import { AppError } from '../errors.ts';
import { isStorableText } from '../storable-text.ts';
import { Prisma, type WebhookDeliveryStatus } from '../generated/prisma/client.ts';
import { EVENT_TYPES, SUBSCRIBABLE_EVENT_TYPES } from './events.ts';
import { ENDPOINT_CHANGED_CHANNEL } from './queue.ts';
import { plannedLastAttemptAt } from './retry-policy.ts';
import {
  describeOverlap,
  endpointReceiverOnDroppedSecrets,
  extendPreviousSecret,
  extendPreviousSecretInput,
  previousSecretOverlapSchema,
  receiverOnDroppedSecrets,
  type ExtendedPreviousSecret,
  type ExtendPreviousSecretInput,
} from './secret-overlap.ts';
import { generateEndpointSecret, secretFingerprint, type SecretBox } from './secrets.ts';
import { describeSignature, SIGNATURE_REFUSED_CODES, signatureDebugSchema, signatureHints, signatureHintSchema } from './signature-debug.ts';
import { checkWebhookUrl, type LookupFn } from './url-policy.ts';

/**
 * The endpoint service: a user's webhook endpoints (CRUD, the per-user limit, secret
 * rotation) and the read side of their deliveries. No HTTP here; routes call it.
 */

export const DESCRIPTION_MAX = 500;
export const DEFAULT_GRACE_PERIOD_SECONDS = 86_400;
export const MAX_GRACE_PERIOD_SECONDS = 604_800;
/** Longest coalescing window of `card.viewed`: a delivery waits at most this long for more views. */
export const MAX_COALESCE_SECONDS = 3_600;
export const DELIVERIES_DEFAULT_LIMIT = 20;
export const DELIVERIES_MAX_LIMIT = 100;
/** The delivery detail embeds this many of its newest attempts; GET …/attempts pages through all. */
export const DELIVERY_DETAIL_ATTEMPTS = 25;
/** What `isActive: false` records, so the user can tell their own pause from an automatic disable. */
export const DISABLED_BY_USER = 'disabled by user';
export const DELIVERY_STATUSES = ['pending', 'success', 'failed', 'cancelled'] as const satisfies readonly WebhookDeliveryStatus[];

// The URL is a plain string here: every URL rule (scheme, credentials, length, address) is the
// URL policy's, answered with URL_NOT_ALLOWED (docs/api.md, URL rules); the body limit bounds its size.
const urlInput = z.string().trim().min(1, 'url is required');

const eventsInput = z
  .array(z.enum(SUBSCRIBABLE_EVENT_TYPES, { error: `must be one of ${SUBSCRIBABLE_EVENT_TYPES.join(', ')}` }))
  .min(1, 'subscribe to at least one event')
  .refine((events) => new Set(events).size === events.length, 'must not contain duplicates');

const descriptionText = z
  .string()
  .trim()
  .max(DESCRIPTION_MAX, `must be at most ${DESCRIPTION_MAX} characters`)
  .refine(isStorableText, 'must not contain NUL characters or unpaired surrogates');

const coalesceSecondsInput = z
  .int('must be a whole number of seconds')
  .min(0, 'must be at least 0')
  .max(MAX_COALESCE_SECONDS, `must be at most ${MAX_COALESCE_SECONDS} (1 hour)`)
  .describe(
    'Views of one card (or of the profile) within this many seconds of the first become one card.viewed ' +
      'delivery, sent when the window closes, with count, firstViewedAt, lastViewedAt and viewers. ' +
      '0 (the default): one delivery per view.',
  );

const descriptionInput = descriptionText
  .nullish()
  .transform((value) => value || null);

export const createEndpointInput = z.strictObject({
  url: urlInput,
  events: eventsInput,
  description: descriptionInput,
  coalesceSeconds: coalesceSecondsInput.default(0),
});
export type CreateEndpointInput = z.input<typeof createEndpointInput>;

export const updateEndpointInput = z
  .strictObject({
    url: urlInput.optional(),
    events: eventsInput.optional(),
    description: descriptionText
      .nullable()
      .transform((value) => value || null)
      .optional(),
    isActive: z.boolean().optional(),
    coalesceSeconds: coalesceSecondsInput.optional(),
  })
  .refine((body) => Object.values(body).some((value) => value !== undefined), {
    message: 'send at least one of url, events, description, isActive, coalesceSeconds',
  });
export type UpdateEndpointInput = z.input<typeof updateEndpointInput>;

// A PATCH without a body (Fastify hands validation `null`) is a rotation with the default grace period.
export const rotateSecretInput = z
  .strictObject({
    gracePeriodSeconds: z
      .int('must be a whole number of seconds')
      .min(0, 'must be at least 0')
      .max(MAX_GRACE_PERIOD_SECONDS, `must be at most ${MAX_GRACE_PERIOD_SECONDS} (7 days)`)
      .default(DEFAULT_GRACE_PERIOD_SECONDS),
  })
  .nullish();
export type RotateSecretInput = z.input<typeof rotateSecretInput>;

export const listDeliveriesQuery = z.object({
  page: z.coerce.number().int('must be a whole number').min(1, 'must be at least 1').default(1),
  limit: z.coerce
    .number()
    .int('must be a whole number')
    .min(1, 'must be at least 1')
    .max(DELIVERIES_MAX_LIMIT, `must be at most ${DELIVERIES_MAX_LIMIT}`)
    .default(DELIVERIES_DEFAULT_LIMIT),
  status: z.enum(DELIVERY_STATUSES, { error: `must be one of ${DELIVERY_STATUSES.join(', ')}` }).optional(),
  eventType: z.enum(EVENT_TYPES, { error: `must be one of ${EVENT_TYPES.join(', ')}` }).optional(),
});
export type ListDeliveriesQuery = z.input<typeof listDeliveriesQuery>;

export const listAttemptsQuery = listDeliveriesQuery.pick({ page: true, limit: true });
export type ListAttemptsQuery = z.input<typeof listAttemptsQuery>;

/** An endpoint as its owner sees it: never a secret nor its ciphertext. */
export const endpointSchema = z.object({
  id: z.guid(),
  url: z.string(),
  description: z.string().nullable(),
  events: z.array(z.string()),
  isActive: z.boolean(),
  disabledAt: z.date().nullable(),
  disabledReason: z.string().nullable(),
  consecutiveFailures: z.int(),
  coalesceSeconds: z.int().describe('card.viewed coalescing window in seconds; 0: one delivery per view'),
  previousSecretExpiresAt: z.date().nullable(),
  createdAt: z.date(),
  updatedAt: z.date(),
});
export type EndpointData = z.infer<typeof endpointSchema>;

/** One endpoint on its own (GET /api/webhooks/:id): also when its next attempt is due, and its secrets' fingerprints. */
export const endpointDetailSchema = endpointSchema.extend({
  nextAttemptAt: z
    .date()
    .nullable()
    .describe('When the earliest pending delivery of this endpoint is due; null when none is pending'),
  secretFingerprint: z
    .string()
    .nullable()
    .describe('Fingerprint of the current secret: the first 8 hex characters of the sha256 of the whole `whsec_…` string'),
  previousSecretOverlap: previousSecretOverlapSchema,
});
export type EndpointDetail = z.infer<typeof endpointDetailSchema>;

/** The answer to a create: the endpoint and, this once, its signing secret. */
export const createdEndpointSchema = endpointSchema.extend({ secret: z.string() });
export type CreatedEndpointData = z.infer<typeof createdEndpointSchema>;

export const rotatedSecretSchema = z.object({
  id: z.guid(),
  secret: z.string(),
  previousSecretExpiresAt: z.date().nullable(),
});
export type RotatedSecretData = z.infer<typeof rotatedSecretSchema>;

export const deliverySchema = z.object({
  id: z.guid(),
  endpointId: z.guid(),
  eventId: z.guid(),
  eventType: z.string(),
  status: z.enum(DELIVERY_STATUSES),
  /** How many attempts have been made. */
  attempts: z.int(),
  responseCode: z.int().nullable(),
  nextRetryAt: z.date().nullable(),
  retriesUntil: z
    .date()
    .nullable()
    .describe(
      'Pending only: when the last attempt is planned if every attempt fails, from the attempts made and ' +
        'WEBHOOK_RETRY_SCHEDULE, without the ±10 % jitter or a Retry-After; null otherwise',
    ),
  errorMessage: z.string().nullable(),
  deliveredAt: z.date().nullable(),
  createdAt: z.date(),
  updatedAt: z.date(),
});
export type DeliveryData = z.infer<typeof deliverySchema>;

export const deliveryPageSchema = z.object({
  data: z.array(deliverySchema),
  pagination: z.object({ page: z.int(), limit: z.int(), total: z.int(), totalPages: z.int() }),
});
export type DeliveryPage = z.infer<typeof deliveryPageSchema>;

export const attemptSchema = z.object({
  attemptNumber: z.int(),
  startedAt: z.date(),
  durationMs: z.int(),
  responseCode: z.int().nullable(),
  responseBody: z.string().nullable(),
  error: z.string().nullable(),
  signature: signatureDebugSchema.nullable(),
  hints: z
    .array(signatureHintSchema)
    .describe(
      'Empty unless the receiver answered 401 or 403; then RECEIVER_ON_PREVIOUS_SECRET when it applies, and always ' +
        'BODY_RESERIALISED, SECRET_NOT_DECODED and CLOCK_SKEW with this attempt\'s figures',
    ),
});

/** One delivery in detail: `attempts` is the newest part of the attempt log, `attemptCount` its length so far. */
export const deliveryDetailSchema = deliverySchema.omit({ attempts: true }).extend({
  attemptCount: z.int(),
  payload: z.unknown(),
  attempts: z
    .array(attemptSchema)
    .describe(
      `The newest ${DELIVERY_DETAIL_ATTEMPTS} attempts at most, oldest of them first; when attemptCount is larger, ` +
        'GET /api/webhooks/:id/deliveries/:deliveryId/attempts pages through them all',
    ),
});
export type DeliveryDetail = z.infer<typeof deliveryDetailSchema>;

export const attemptPageSchema = z.object({
  data: z.array(attemptSchema),
  pagination: deliveryPageSchema.shape.pagination,
});
export type AttemptPage = z.infer<typeof attemptPageSchema>;

export interface EndpointServiceDeps {
  db: Database;
  config: Pick<Config, 'webhooks'>;
  secretBox: SecretBox;
  /** DNS resolver for the URL policy; tests inject one. */
  lookup?: LookupFn;
  /**
   * Called once a change of an endpoint's url, secrets or isActive, or its deletion, is
   * committed, before the service returns: the in-process worker stops sending with what it
   * held (webhook-engine.ts wires it). Workers elsewhere hear of it on ENDPOINT_CHANGED_CHANNEL.
   */
  onEndpointChanged?: (endpointId: string) => void;
}

// Ids are UUID columns: anything else would be a database error, not a miss. Response schemas
// use z.guid() (any 8-4-4-4-12 hex, like the column) so a stored id can never fail serialization.
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const endpointSelect = {
  id: true,
  url: true,
  description: true,
  events: true,
  isActive: true,
  disabledAt: true,
  disabledReason: true,
  consecutiveFailures: true,
  coalesceSeconds: true,
  previousSecretExpiresAt: true,
  createdAt: true,
  updatedAt: true,
} as const satisfies Prisma.WebhookEndpointSelect;

const deliverySelect = {
  id: true,
  endpointId: true,
  eventId: true,
  eventType: true,
  status: true,
  attempts: true,
  responseCode: true,
  nextRetryAt: true,
  errorMessage: true,
  deliveredAt: true,
  createdAt: true,
  updatedAt: true,
} as const satisfies Prisma.WebhookDeliverySelect;

const attemptSelect = {
  id: true,
  attemptNumber: true,
  startedAt: true,
  durationMs: true,
  responseCode: true,
  responseBody: true,
  error: true,
  signatureTimestamp: true,
  bodyBytes: true,
  bodySha256: true,
  signedWith: true,
  responseDate: true,
} as const satisfies Prisma.WebhookDeliveryAttemptSelect;

/** Routes validate with these same schemas; the service checks again so every caller gets the same rules. */
function parseInput<S extends z.ZodType>(schema: S, input: unknown): z.output<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const details = result.error.issues.map((issue) => ({ field: issue.path.join('.'), message: issue.message }));
  const first = details[0];
  throw new AppError('VALIDATION_ERROR', first ? `${first.field || 'body'}: ${first.message}` : undefined, details);
}

function isPrismaError(error: unknown, code: string): boolean {
  return error instanceof Prisma.PrismaClientKnownRequestError && error.code === code;
}

const endpointNotFound = () => new AppError('NOT_FOUND', 'Webhook endpoint not found');
const deliveryNotFound = () => new AppError('NOT_FOUND', 'Delivery not found');

export class WebhookEndpointService {
  readonly #db: Database;
  readonly #config: Pick<Config, 'webhooks'>;
  readonly #secretBox: SecretBox;
  readonly #lookup: LookupFn | undefined;
  readonly #onEndpointChanged: (endpointId: string) => void;

  constructor(deps: EndpointServiceDeps) {
    this.#db = deps.db;
    this.#config = deps.config;
    this.#secretBox = deps.secretBox;
    this.#lookup = deps.lookup;
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
    const { url, events, description, coalesceSeconds } = parseInput(createEndpointInput, input);
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
          return tx.webhookEndpoint.create({
            data: { userId, url, events, description, coalesceSeconds, secretEncrypted },
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
    if (!UUID.test(endpointId)) throw endpointNotFound();
    const row = await this.#prisma.webhookEndpoint.findFirst({
      where: { id: endpointId, userId },
      select: { ...endpointSelect, secretEncrypted: true, previousSecretEncrypted: true },
    });
    if (!row) throw endpointNotFound();
    const { secretEncrypted, previousSecretEncrypted, ...endpoint } = row;
    const previous =
      previousSecretEncrypted !== null && endpoint.previousSecretExpiresAt !== null
        ? { expiresAt: endpoint.previousSecretExpiresAt, fingerprint: this.#fingerprint(previousSecretEncrypted) }
        : null;
    const [next, receiverOnSecrets] = await Promise.all([
      this.#prisma.webhookDelivery.aggregate({ where: { endpointId, status: 'pending' }, _min: { nextRetryAt: true } }),
      // Only worth the history lookup while there is a previous secret to offer.
      previous ? endpointReceiverOnDroppedSecrets(this.#db.sql, endpointId) : [],
    ]);
    return {
      ...endpoint,
      nextAttemptAt: next._min.nextRetryAt,
      secretFingerprint: this.#fingerprint(secretEncrypted),
      previousSecretOverlap: describeOverlap({ endpointId, previous, receiverOnSecrets, now: new Date() }),
    };
  }

  /** Null when the secret cannot be opened (a master key that is gone): the detail still answers. */
  #fingerprint(sealed: string): string | null {
    try {
      return secretFingerprint(this.#secretBox.open(sealed));
    } catch {
      return null;
    }
  }

  async get(userId: string, endpointId: string): Promise<EndpointData> {
    if (!UUID.test(endpointId)) throw endpointNotFound();
    const endpoint = await this.#prisma.webhookEndpoint.findFirst({ where: { id: endpointId, userId }, select: endpointSelect });
    if (!endpoint) throw endpointNotFound();
    return endpoint;
  }

  /**
   * Changes url, events, description, isActive or coalesceSeconds. Disabling cancels the endpoint's pending
   * deliveries (they are never attempted); re-enabling clears the disable and the failure count.
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

  /** Deletes the endpoint; its deliveries and their attempts go with it (ON DELETE CASCADE). */
  async delete(userId: string, endpointId: string): Promise<void> {
    if (!UUID.test(endpointId)) throw endpointNotFound();
    const rows = await this.#db.sql.query<{ id: string }>(
      `WITH deleted AS (DELETE FROM webhook_endpoints WHERE id = $1::uuid AND user_id = $2::uuid RETURNING id)
       SELECT id, pg_notify('${ENDPOINT_CHANGED_CHANNEL}', id::text) FROM deleted`,
      [endpointId, userId],
    );
    if (rows.length === 0) throw endpointNotFound();
    this.#onEndpointChanged(endpointId);
  }

  /**
   * A new secret; the current one stays valid (still sealed) until now + grace period, so
   * receivers can switch over. A grace period of 0 revokes the current secret at once.
   */
  async rotateSecret(userId: string, endpointId: string, input?: RotateSecretInput): Promise<RotatedSecretData> {
    const { gracePeriodSeconds } = parseInput(rotateSecretInput, input) ?? { gracePeriodSeconds: DEFAULT_GRACE_PERIOD_SECONDS };
    if (!UUID.test(endpointId)) throw endpointNotFound();
    const secret = generateEndpointSecret();
    const expiresAt = gracePeriodSeconds > 0 ? new Date(Date.now() + gracePeriodSeconds * 1000) : null;
    // Raw SQL because the old ciphertext moves column to column in one statement, which Prisma
    // cannot express; doing it atomically means two concurrent rotations never lose a secret.
    const rows = await this.#db.sql.query<{ id: string; previous_secret_expires_at: Date | string | null }>(
      `UPDATE webhook_endpoints
          SET previous_secret_encrypted = CASE WHEN $4::timestamptz IS NULL THEN NULL ELSE secret_encrypted END,
              previous_secret_expires_at = $4::timestamptz,
              secret_encrypted = $3,
              revision = revision + 1,
              updated_at = now()
        WHERE id = $1::uuid AND user_id = $2::uuid
        RETURNING id, previous_secret_expires_at, pg_notify('${ENDPOINT_CHANGED_CHANNEL}', id::text)`,
      [endpointId, userId, this.#secretBox.seal(secret), expiresAt?.toISOString() ?? null],
    );
    const row = rows[0];
    if (!row) throw endpointNotFound();
    this.#onEndpointChanged(endpointId);
    return {
      id: row.id,
      secret,
      previousSecretExpiresAt: row.previous_secret_expires_at === null ? null : new Date(row.previous_secret_expires_at),
    };
  }

  /**
   * Makes the previous secret sign again, beside the current one, for `hours` from now (or
   * keeps its later expiry): for a receiver still on it. 409 NO_PREVIOUS_SECRET when none is
   * kept (never rotated, rotated with no grace period, or forgotten
   * PREVIOUS_SECRET_KEPT_AFTER_EXPIRY_MS after it stopped signing).
   */
  async extendPreviousSecret(userId: string, endpointId: string, input: ExtendPreviousSecretInput): Promise<ExtendedPreviousSecret> {
    const { hours } = parseInput(extendPreviousSecretInput, input);
    await this.get(userId, endpointId);
    const now = new Date();
    const extended = await extendPreviousSecret(this.#db.sql, {
      userId,
      endpointId,
      until: new Date(now.getTime() + hours * 3_600_000),
      now,
    });
    if (!extended) throw new AppError('NO_PREVIOUS_SECRET');
    this.#onEndpointChanged(endpointId);
    return {
      id: endpointId,
      previousSecretExpiresAt: extended.expiresAt,
      previousSecretFingerprint: this.#fingerprint(extended.sealedPrevious),
    };
  }

  /** The endpoint's deliveries, newest first. */
  async listDeliveries(userId: string, endpointId: string, query: ListDeliveriesQuery = {}): Promise<DeliveryPage> {
    const { page, limit, status, eventType } = parseInput(listDeliveriesQuery, query);
    await this.get(userId, endpointId);
    const where: Prisma.WebhookDeliveryWhereInput = { endpointId, status, eventType };
    const [total, data] = await this.#prisma.$transaction([
      this.#prisma.webhookDelivery.count({ where }),
      this.#prisma.webhookDelivery.findMany({
        where,
        select: deliverySelect,
        orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
        skip: (page - 1) * limit,
        take: limit,
      }),
    ]);
    return {
      data: data.map((row) => this.#withRetriesUntil(row)),
      pagination: { page, limit, total, totalPages: Math.ceil(total / limit) },
    };
  }

  /** One delivery with its payload and its newest attempts, each with what it signed and, when refused, hints. */
  async getDelivery(userId: string, endpointId: string, deliveryId: string): Promise<DeliveryDetail> {
    if (!UUID.test(endpointId)) throw endpointNotFound();
    if (!UUID.test(deliveryId)) throw deliveryNotFound();
    const delivery = await this.#prisma.webhookDelivery.findFirst({
      where: { id: deliveryId, endpointId, endpoint: { userId } },
      select: {
        ...deliverySelect,
        payload: true,
        attemptsLog: { orderBy: { attemptNumber: 'desc' }, take: DELIVERY_DETAIL_ATTEMPTS, select: attemptSelect },
      },
    });
    if (!delivery) throw deliveryNotFound();
    const { attemptsLog, attempts, ...rest } = this.#withRetriesUntil(delivery);
    return {
      ...rest,
      attemptCount: attempts,
      attempts: await this.#describeAttempts(endpointId, deliveryId, attemptsLog.reverse()),
    };
  }

  /** A delivery's attempts, oldest first, a page at a time. */
  async listAttempts(userId: string, endpointId: string, deliveryId: string, query: ListAttemptsQuery = {}): Promise<AttemptPage> {
    const { page, limit } = parseInput(listAttemptsQuery, query);
    if (!UUID.test(endpointId)) throw endpointNotFound();
    if (!UUID.test(deliveryId)) throw deliveryNotFound();
    const owned = await this.#prisma.webhookDelivery.findFirst({ where: { id: deliveryId, endpointId, endpoint: { userId } }, select: { id: true } });
    if (!owned) throw deliveryNotFound();
    const [total, rows] = await this.#prisma.$transaction([
      this.#prisma.webhookDeliveryAttempt.count({ where: { deliveryId } }),
      this.#prisma.webhookDeliveryAttempt.findMany({
        where: { deliveryId },
        orderBy: { attemptNumber: 'asc' },
        skip: (page - 1) * limit,
        take: limit,
        select: attemptSelect,
      }),
    ]);
    return {
      data: await this.#describeAttempts(endpointId, deliveryId, rows),
      pagination: { page, limit, total, totalPages: Math.ceil(total / limit) },
    };
  }

  async #describeAttempts(
    endpointId: string,
    deliveryId: string,
    rows: ReadonlyArray<Prisma.WebhookDeliveryAttemptGetPayload<{ select: typeof attemptSelect }>>,
  ): Promise<DeliveryDetail['attempts']> {
    const refused = rows.filter((a) => a.responseCode !== null && SIGNATURE_REFUSED_CODES.includes(a.responseCode));
    const labelled = await receiverOnDroppedSecrets(this.#db.sql, endpointId, refused.map((a) => a.id));
    return rows.map((a) => {
      const signature = describeSignature(deliveryId, a);
      return {
        attemptNumber: a.attemptNumber,
        startedAt: a.startedAt,
        durationMs: a.durationMs,
        responseCode: a.responseCode,
        responseBody: a.responseBody,
        error: a.error,
        signature,
        hints: signatureHints(a.responseCode, signature, { endpointId, receiverOnSecrets: labelled.get(a.id) ?? [] }),
      };
    });
  }

  #withRetriesUntil<R extends { status: WebhookDeliveryStatus; attempts: number; nextRetryAt: Date | null }>(
    row: R,
  ): R & { retriesUntil: Date | null } {
    const retriesUntil =
      row.status === 'pending' && row.nextRetryAt
        ? plannedLastAttemptAt(row.nextRetryAt, row.attempts, this.#config.webhooks.retryScheduleMs)
        : null;
    return { ...row, retriesUntil };
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
 * Clearing `coalesce_key` closes an open coalescing delivery, so views after a re-enable open a new one.
 */
export async function cancelPendingDeliveries(tx: Prisma.TransactionClient, endpointId: string): Promise<number> {
  return tx.$executeRaw`
    UPDATE webhook_deliveries
       SET status = 'cancelled', next_retry_at = NULL, claim_token = NULL, coalesce_key = NULL, updated_at = now()
     WHERE endpoint_id = ${endpointId}::uuid AND status = 'pending' AND (claim_token IS NULL OR next_retry_at <= now())`;
}
