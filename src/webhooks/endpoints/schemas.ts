import { z } from 'zod';
import { AppError } from '../../errors.ts';
import { isStorableText } from '../../storable-text.ts';
import type { Prisma, WebhookDeliveryStatus } from '../../generated/prisma/client.ts';
import { EVENT_TYPES, SUBSCRIBABLE_EVENT_TYPES } from '../events.ts';
import { MAX_PER_SECOND_LIMIT } from '../queue/pacing.ts';
import { previousSecretOverlapSchema } from '../secret-overlap.ts';
import { signatureDebugSchema, signatureHintSchema } from '../signature-debug.ts';
import { uuidSchema } from '../../ids.ts';

/** What a user sends about their endpoints and what they get back: the zod schemas routes and services share. */

export const DESCRIPTION_MAX = 500;
export const DEFAULT_GRACE_PERIOD_SECONDS = 86_400;
export const MAX_GRACE_PERIOD_SECONDS = 604_800;
/** Longest coalescing window of `card.viewed`: a delivery waits at most this long for more views. */
export const MAX_COALESCE_SECONDS = 3_600;
/** Most cards one endpoint may list. */
export const MAX_CARD_IDS = 100;
export const DELIVERIES_DEFAULT_LIMIT = 20;
export const DELIVERIES_MAX_LIMIT = 100;
/** The delivery detail embeds this many of its newest attempts; GET …/attempts pages through all. */
export const DELIVERY_DETAIL_ATTEMPTS = 25;
/** What `isActive: false` records, so the user can tell their own pause from an automatic disable. */
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

// Whose cards they are is the service's check (endpoints/own-cards.ts): it needs the database.
const cardIdsInput = z
  .array(
    z.guid('must be a card id').transform((id) => id.toLowerCase()),
    { error: 'must be an array of card ids' },
  )
  .max(MAX_CARD_IDS, `must list at most ${MAX_CARD_IDS} cards`)
  .refine((ids) => new Set(ids).size === ids.length, 'must not contain duplicates')
  .describe(
    'Only events of these cards of yours (card.viewed of the card, contact.saved of the card) reach the endpoint; ' +
      'empty (the default): every card and your profile. A profile view (cardId null) reaches only endpoints with no cardIds. ' +
      'A card deleted later leaves the list; an endpoint whose list that empties is disabled.',
  );

const maxPerSecondInput = z
  .int('must be a whole number of attempts a second')
  .min(1, 'must be at least 1')
  .max(MAX_PER_SECOND_LIMIT, `must be at most ${MAX_PER_SECOND_LIMIT}`)
  .nullable()
  .describe(
    'At most this many attempts a second to this endpoint (1–1000), however many workers deliver; ' +
      `bursts of up to a tenth of a second's worth. Deliveries beyond it wait in the queue for their turn. null (the default): no limit.`,
  );

const descriptionInput = descriptionText.nullish().transform((value) => value || null);

export const createEndpointInput = z.strictObject({
  url: urlInput,
  events: eventsInput,
  description: descriptionInput,
  coalesceSeconds: coalesceSecondsInput.default(0),
  cardIds: cardIdsInput.default([]),
  maxPerSecond: maxPerSecondInput.default(null),
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
    cardIds: cardIdsInput.optional(),
    maxPerSecond: maxPerSecondInput.optional(),
  })
  .refine((body) => Object.values(body).some((value) => value !== undefined), {
    message: 'send at least one of url, events, description, isActive, coalesceSeconds, cardIds, maxPerSecond',
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
  id: uuidSchema,
  url: z.string(),
  description: z.string().nullable(),
  events: z.array(z.string()),
  isActive: z.boolean(),
  disabledAt: z.date().nullable(),
  disabledReason: z.string().nullable(),
  consecutiveFailures: z.int(),
  coalesceSeconds: z.int().describe('card.viewed coalescing window in seconds; 0: one delivery per view'),
  cardIds: z.array(uuidSchema).describe('The cards whose events this endpoint takes; empty: every card and the profile'),
  maxPerSecond: z.int().nullable().describe('At most this many attempts a second to this endpoint; null: no limit'),
  previousSecretExpiresAt: z.date().nullable(),
  createdAt: z.date(),
  updatedAt: z.date(),
});
export type EndpointData = z.infer<typeof endpointSchema>;

/** One endpoint on its own (GET /api/webhooks/:id): also when its next attempt is due, and its secrets' fingerprints. */
export const endpointDetailSchema = endpointSchema.extend({
  nextAttemptAt: z.date().nullable().describe('When the earliest pending delivery of this endpoint is due; null when none is pending'),
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
  id: uuidSchema,
  secret: z.string(),
  previousSecretExpiresAt: z.date().nullable(),
});
export type RotatedSecretData = z.infer<typeof rotatedSecretSchema>;

export const deliverySchema = z.object({
  id: uuidSchema,
  endpointId: uuidSchema,
  eventId: uuidSchema,
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
        "BODY_RESERIALISED, SECRET_NOT_DECODED and CLOCK_SKEW with this attempt's figures",
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

/** The columns behind `endpointSchema`. */
export const endpointSelect = {
  id: true,
  url: true,
  description: true,
  events: true,
  isActive: true,
  disabledAt: true,
  disabledReason: true,
  consecutiveFailures: true,
  coalesceSeconds: true,
  cardIds: true,
  maxPerSecond: true,
  previousSecretExpiresAt: true,
  createdAt: true,
  updatedAt: true,
} as const satisfies Prisma.WebhookEndpointSelect;

/** Routes validate with these same schemas; the service checks again so every caller gets the same rules. */
export function parseInput<S extends z.ZodType>(schema: S, input: unknown): z.output<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const details = result.error.issues.map((issue) => ({ field: issue.path.join('.'), message: issue.message }));
  const first = details[0];
  throw new AppError('VALIDATION_ERROR', first ? `${first.field || 'body'}: ${first.message}` : undefined, details);
}
