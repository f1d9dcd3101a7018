import { z } from 'zod';
import type { JSONSchema } from 'zod/v4/core';
import {
  coalescedCardViewedEnvelope,
  EVENT_ENVELOPE_SCHEMAS,
  MAX_COALESCED_VIEWERS,
  SUBSCRIBABLE_EVENT_TYPES,
  type CoalescedCardViewedEnvelope,
  type EventEnvelope,
  type EventType,
  type SubscribableEventType,
} from './events.ts';

/**
 * What receivers are told about each body they can get: a description, a sample, and the JSON
 * Schema generated from the zod schema in events.ts. `GET /api/webhooks/event-types` lists the
 * subscribable events; the OpenAPI document's `webhooks` (openapi-webhooks.ts) has every body.
 */

export type JsonSchema = JSONSchema.BaseSchema;

/** A zod schema as JSON Schema draft 2020-12, the dialect of OpenAPI 3.1. */
export function toJsonSchema(schema: z.ZodType): JsonSchema {
  return z.toJSONSchema(schema, { target: 'draft-2020-12' });
}

// Fixed so that the documented examples do not change from one request to the next.
const SAMPLE_TIMESTAMP = '2026-11-28T12:00:00.000Z';
const SAMPLE_OWNER_ID = '8f14e45f-ceea-4e7a-9c1b-2d3f4a5b6c7d';
const SAMPLE_CARD_ID = '3c59dc04-8e2b-4f6e-a1d2-7b8c9d0e1f23';
const SAMPLE_VISITOR = { id: 'a87ff679-a2f3-4e1c-8b5d-6e7f8a9b0c1d', username: 'ada' };
const SAMPLE_OTHER_VISITOR = { id: 'c9f0f895-fb98-4b91-8a4c-5d6e7f809a1b', username: 'grace' };

const CARD_VIEWED_EXAMPLE: EventEnvelope<'card.viewed'> = {
  id: 'e4da3b7f-bbce-4345-9d77-7a1b2c3d4e5f',
  type: 'card.viewed',
  timestamp: SAMPLE_TIMESTAMP,
  data: { userId: SAMPLE_OWNER_ID, cardId: SAMPLE_CARD_ID, viewer: SAMPLE_VISITOR, source: 'qr' },
};

const COALESCED_CARD_VIEWED_EXAMPLE: CoalescedCardViewedEnvelope = {
  ...CARD_VIEWED_EXAMPLE,
  data: {
    ...CARD_VIEWED_EXAMPLE.data,
    count: 7,
    firstViewedAt: SAMPLE_TIMESTAMP,
    lastViewedAt: '2026-11-28T12:00:54.210Z',
    viewers: [SAMPLE_VISITOR, SAMPLE_OTHER_VISITOR],
  },
};

const CONTACT_SAVED_EXAMPLE: EventEnvelope<'contact.saved'> = {
  id: '1679091c-5a88-4faf-9fb5-e6087eb1b2dc',
  type: 'contact.saved',
  timestamp: SAMPLE_TIMESTAMP,
  data: { userId: SAMPLE_OWNER_ID, cardId: SAMPLE_CARD_ID, savedBy: SAMPLE_VISITOR },
};

const WEBHOOK_TEST_EXAMPLE: EventEnvelope<'webhook.test'> = {
  id: '45c48cce-2e2d-4fbd-a7a5-0f1e2d3c4b5a',
  type: 'webhook.test',
  timestamp: SAMPLE_TIMESTAMP,
  data: { endpointId: '6512bd43-d9ca-4a6e-9b1c-3d2e1f0a9b8c' },
};

const CARD_VIEWED_DESCRIPTION =
  'Someone other than you viewed your public profile (cardId null) or one of your cards. ' +
  'viewer is null for anonymous visitors; source is how they arrived (qr, link or nfc).';

const COALESCED_DESCRIPTION =
  'An endpoint with coalesceSeconds > 0 gets the views of one card (or of the profile) within that many ' +
  'seconds of the first as one card.viewed delivery, sent when the window closes: id, timestamp, ' +
  'viewer and source are those of the first view, and data adds count (every view, anonymous and repeated ' +
  `ones included), firstViewedAt, lastViewedAt and viewers (distinct signed-in viewers in order, at most ${MAX_COALESCED_VIEWERS}).`;

/** The name of the coalesced `card.viewed` body in the OpenAPI `webhooks`: its `type` is still `card.viewed`. */
const COALESCED_CARD_VIEWED = 'card.viewed (coalesced)';

/** One body a receiver can get: an event, or the coalesced form of `card.viewed`. */
export interface WebhookBody {
  /** Its key in the OpenAPI `webhooks`. */
  name: string;
  /** Its name in the OpenAPI `components.schemas`: the type name a client generator gives it. */
  schemaName: string;
  /** Its `type` and `x-devcard-event`. */
  type: EventType;
  summary: string;
  description: string;
  schema: JsonSchema;
  example: EventEnvelope | CoalescedCardViewedEnvelope;
}

const CARD_VIEWED_BODY: WebhookBody = {
  name: 'card.viewed',
  schemaName: 'CardViewedEvent',
  type: 'card.viewed',
  summary: 'Your profile or one of your cards was viewed',
  description: `${CARD_VIEWED_DESCRIPTION} Endpoints with coalesceSeconds > 0 get "${COALESCED_CARD_VIEWED}" instead.`,
  schema: toJsonSchema(EVENT_ENVELOPE_SCHEMAS['card.viewed']),
  example: CARD_VIEWED_EXAMPLE,
};

const COALESCED_CARD_VIEWED_BODY: WebhookBody = {
  name: COALESCED_CARD_VIEWED,
  schemaName: 'CoalescedCardViewedEvent',
  type: 'card.viewed',
  summary: 'Views of your profile or of one of your cards, coalesced',
  description: `${CARD_VIEWED_DESCRIPTION} ${COALESCED_DESCRIPTION}`,
  schema: toJsonSchema(coalescedCardViewedEnvelope),
  example: COALESCED_CARD_VIEWED_EXAMPLE,
};

const CONTACT_SAVED_BODY: WebhookBody = {
  name: 'contact.saved',
  schemaName: 'ContactSavedEvent',
  type: 'contact.saved',
  summary: 'One of your cards was saved',
  description: 'A signed-in user saved one of your cards to their contacts for the first time.',
  schema: toJsonSchema(EVENT_ENVELOPE_SCHEMAS['contact.saved']),
  example: CONTACT_SAVED_EXAMPLE,
};

const WEBHOOK_TEST_BODY: WebhookBody = {
  name: 'webhook.test',
  schemaName: 'WebhookTestEvent',
  type: 'webhook.test',
  summary: 'A test event',
  description:
    'Sent by POST /api/webhooks/:id/test, and by the receiver self-test (POST /api/webhooks/:id/verify-receiver), ' +
    'to that endpoint only, whatever it subscribes to. Endpoints cannot subscribe to it.',
  schema: toJsonSchema(EVENT_ENVELOPE_SCHEMAS['webhook.test']),
  example: WEBHOOK_TEST_EXAMPLE,
};

/** Every body a receiver can get. */
export const WEBHOOK_BODIES: readonly WebhookBody[] = [CARD_VIEWED_BODY, COALESCED_CARD_VIEWED_BODY, CONTACT_SAVED_BODY, WEBHOOK_TEST_BODY];

/** An entry of `GET /api/webhooks/event-types`. */
export interface EventTypeEntry<T extends SubscribableEventType = SubscribableEventType> {
  type: T;
  description: string;
  /** The JSON Schema of the body. */
  schema: JsonSchema;
  example: EventEnvelope<T>;
  /** `card.viewed` only: what an endpoint with `coalesceSeconds` > 0 gets for several views. */
  coalescedSchema?: JsonSchema;
  coalescedExample?: CoalescedCardViewedEnvelope;
}

const CATALOGUE: { [T in SubscribableEventType]: EventTypeEntry<T> } = {
  'card.viewed': {
    type: 'card.viewed',
    description: `${CARD_VIEWED_DESCRIPTION} ${COALESCED_DESCRIPTION} (coalescedSchema, coalescedExample)`,
    schema: CARD_VIEWED_BODY.schema,
    example: CARD_VIEWED_EXAMPLE,
    coalescedSchema: COALESCED_CARD_VIEWED_BODY.schema,
    coalescedExample: COALESCED_CARD_VIEWED_EXAMPLE,
  },
  'contact.saved': {
    type: 'contact.saved',
    description: CONTACT_SAVED_BODY.description,
    schema: CONTACT_SAVED_BODY.schema,
    example: CONTACT_SAVED_EXAMPLE,
  },
};

/** What `GET /api/webhooks/event-types` lists: the subscribable events, each with its body's schema and a sample. */
export function eventCatalogue(): EventTypeEntry[] {
  return SUBSCRIBABLE_EVENT_TYPES.map((type) => structuredClone(CATALOGUE[type]));
}
