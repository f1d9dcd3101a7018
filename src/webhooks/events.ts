import { z } from 'zod';
import { uuidSchema } from '../ids.ts';

/**
 * Which events exist and the zod schemas of the bodies they are sent as. These schemas are the
 * one source of the body types the code builds (dispatch, coalesce.ts, envelope.ts), of the JSON
 * Schemas `GET /api/webhooks/event-types` publishes and of the OpenAPI document's `webhooks`.
 */

/** Events an endpoint can subscribe to. */
export const SUBSCRIBABLE_EVENT_TYPES = ['card.viewed', 'contact.saved'] as const;
export type SubscribableEventType = (typeof SUBSCRIBABLE_EVENT_TYPES)[number];

/** Sent only by `POST /api/webhooks/:id/test`, to that endpoint, whatever it subscribes to. */
export const TEST_EVENT_TYPE = 'webhook.test';

export const EVENT_TYPES = [...SUBSCRIBABLE_EVENT_TYPES, TEST_EVENT_TYPE] as const;
export type EventType = (typeof EVENT_TYPES)[number];

export const VIEW_SOURCES = ['qr', 'link', 'nfc'] as const;
export type ViewSource = (typeof VIEW_SOURCES)[number];

const userRef = z.object({ id: uuidSchema.describe('The user id'), username: z.string().min(1) });

export const cardViewedData = z.object({
  userId: uuidSchema.describe('The owner of the profile or card, to whom the endpoint belongs'),
  cardId: uuidSchema.nullable().describe('The card viewed; null when the profile page was viewed'),
  viewer: userRef.nullable().describe('The signed-in user who viewed it; null for an anonymous visitor'),
  source: z.enum(VIEW_SOURCES).describe('How the viewer arrived (the `source` query parameter of the view; `link` by default)'),
});

/** How many distinct signed-in viewers a coalesced `card.viewed` lists. */
export const MAX_COALESCED_VIEWERS = 20;

/**
 * What a coalesced `card.viewed` adds to the contract fields (endpoints with `coalesceSeconds` > 0):
 * the views of one card, or of the profile, within the endpoint's window.
 */
export const coalescedViewFields = z.object({
  count: z.int().min(1).describe('Every view folded into this delivery, anonymous and repeated ones included'),
  firstViewedAt: z.iso.datetime().describe('The time of the earliest of those views'),
  lastViewedAt: z.iso.datetime().describe('The time of the latest of those views'),
  viewers: z
    .array(userRef)
    .max(MAX_COALESCED_VIEWERS)
    .describe(`The distinct signed-in viewers, in the order they first viewed, at most ${MAX_COALESCED_VIEWERS}`),
});

export const coalescedCardViewedData = cardViewedData.extend(coalescedViewFields.shape);

export const contactSavedData = z.object({
  userId: uuidSchema.describe('The owner of the card, to whom the endpoint belongs'),
  cardId: uuidSchema.describe('The card saved'),
  savedBy: userRef.describe('The signed-in user who saved it'),
});

export const webhookTestData = z.object({
  endpointId: uuidSchema.describe('The endpoint the test was sent to'),
});

export type CardViewedData = z.infer<typeof cardViewedData>;
export type CoalescedViewFields = z.infer<typeof coalescedViewFields>;
export type CoalescedCardViewedData = z.infer<typeof coalescedCardViewedData>;
export type ContactSavedData = z.infer<typeof contactSavedData>;
export type WebhookTestData = z.infer<typeof webhookTestData>;

export const EVENT_DATA_SCHEMAS = {
  'card.viewed': cardViewedData,
  'contact.saved': contactSavedData,
  'webhook.test': webhookTestData,
} as const satisfies Record<EventType, z.ZodType>;

export type EventData<T extends EventType> = z.infer<(typeof EVENT_DATA_SCHEMAS)[T]>;

/** The fields every body has around its `type` and `data`. */
const envelopeFields = z.object({
  id: uuidSchema.describe('The event id, the same at every endpoint the event goes to (the delivery id is `webhook-id`)'),
  timestamp: z.iso.datetime().describe('When the event happened (ISO 8601, UTC)'),
});

/** A body schema, its keys in the order they are sent: `{"id","type","timestamp","data"}`. */
function envelopeOf<T extends EventType, D extends z.ZodType>(type: T, data: D) {
  return z.object({ id: envelopeFields.shape.id, type: z.literal(type), timestamp: envelopeFields.shape.timestamp, data });
}

/** The JSON body POSTed to an endpoint, per event type (docs/receiving-webhooks.md). */
export const EVENT_ENVELOPE_SCHEMAS = {
  'card.viewed': envelopeOf('card.viewed', cardViewedData),
  'contact.saved': envelopeOf('contact.saved', contactSavedData),
  'webhook.test': envelopeOf('webhook.test', webhookTestData),
} as const satisfies Record<EventType, z.ZodType>;

/** The body of a coalesced `card.viewed` delivery. */
export const coalescedCardViewedEnvelope = envelopeOf('card.viewed', coalescedCardViewedData);

/**
 * The body of an event of type `T`. Written generically so that code generic in `T` can build
 * one; for each event type it is the type of EVENT_ENVELOPE_SCHEMAS[T] (test/webhooks/events.test.ts).
 */
export type EventEnvelope<T extends EventType = EventType> = {
  id: EnvelopeFields['id'];
  type: T;
  timestamp: EnvelopeFields['timestamp'];
  data: EventData<T>;
};
type EnvelopeFields = z.infer<typeof envelopeFields>;
export type CoalescedCardViewedEnvelope = z.infer<typeof coalescedCardViewedEnvelope>;

export function isSubscribableEventType(value: string): value is SubscribableEventType {
  return (SUBSCRIBABLE_EVENT_TYPES as readonly string[]).includes(value);
}
