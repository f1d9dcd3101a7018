import { z } from 'zod';
import { uuidSchema } from '../ids.ts';

/** The event catalogue: which events exist, the shape of their `data`, and a sample of each. */

/** Events an endpoint can subscribe to. */
export const SUBSCRIBABLE_EVENT_TYPES = ['card.viewed', 'contact.saved'] as const;
export type SubscribableEventType = (typeof SUBSCRIBABLE_EVENT_TYPES)[number];

/** Sent only by `POST /api/webhooks/:id/test`, to that endpoint, whatever it subscribes to. */
export const TEST_EVENT_TYPE = 'webhook.test';

export const EVENT_TYPES = [...SUBSCRIBABLE_EVENT_TYPES, TEST_EVENT_TYPE] as const;
export type EventType = (typeof EVENT_TYPES)[number];

export const VIEW_SOURCES = ['qr', 'link', 'nfc'] as const;
export type ViewSource = (typeof VIEW_SOURCES)[number];

const userRef = z.object({ id: uuidSchema, username: z.string().min(1) });

export const cardViewedData = z.object({
  userId: uuidSchema,
  /** null when the profile page, not a card, was viewed. */
  cardId: uuidSchema.nullable(),
  /** null for anonymous viewers. */
  viewer: userRef.nullable(),
  source: z.enum(VIEW_SOURCES),
});

/** How many distinct signed-in viewers a coalesced `card.viewed` lists. */
export const MAX_COALESCED_VIEWERS = 20;

/**
 * What a coalesced `card.viewed` adds to the contract fields (endpoints with `coalesceSeconds` > 0):
 * the views of one card, or of the profile, within the endpoint's window.
 */
export const coalescedViewFields = z.object({
  /** Every view folded into this delivery, anonymous and repeated ones included. */
  count: z.int().min(1),
  firstViewedAt: z.iso.datetime(),
  lastViewedAt: z.iso.datetime(),
  /** Distinct signed-in viewers in the order they first viewed, at most MAX_COALESCED_VIEWERS. */
  viewers: z.array(userRef).max(MAX_COALESCED_VIEWERS),
});

export const coalescedCardViewedData = cardViewedData.extend(coalescedViewFields.shape);

export const contactSavedData = z.object({
  userId: uuidSchema,
  cardId: uuidSchema,
  savedBy: userRef,
});

export const webhookTestData = z.object({
  endpointId: uuidSchema,
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

/** The JSON body POSTed to an endpoint (docs/receiving-webhooks.md). */
export interface EventEnvelope<T extends EventType = EventType> {
  id: string;
  type: T;
  timestamp: string;
  data: EventData<T>;
}

export function isSubscribableEventType(value: string): value is SubscribableEventType {
  return (SUBSCRIBABLE_EVENT_TYPES as readonly string[]).includes(value);
}

// Fixed so that the documented examples do not change from one request to the next.
const SAMPLE_TIMESTAMP = '2026-11-28T12:00:00.000Z';
const SAMPLE_OWNER_ID = '8f14e45f-ceea-4e7a-9c1b-2d3f4a5b6c7d';
const SAMPLE_CARD_ID = '3c59dc04-8e2b-4f6e-a1d2-7b8c9d0e1f23';
const SAMPLE_VISITOR = { id: 'a87ff679-a2f3-4e1c-8b5d-6e7f8a9b0c1d', username: 'ada' };
const SAMPLE_OTHER_VISITOR = { id: 'c9f0f895-fb98-4b91-8a4c-5d6e7f809a1b', username: 'grace' };

/** The body of a coalesced `card.viewed` delivery. */
export interface CoalescedCardViewedEnvelope extends Omit<EventEnvelope<'card.viewed'>, 'data'> {
  data: CoalescedCardViewedData;
}

interface CatalogueEntry<T extends EventType> {
  type: T;
  description: string;
  example: EventEnvelope<T>;
  /** `card.viewed` only: what an endpoint with `coalesceSeconds` > 0 gets for several views. */
  coalescedExample?: CoalescedCardViewedEnvelope;
}

const CATALOGUE: { [T in SubscribableEventType]: CatalogueEntry<T> } = {
  'card.viewed': {
    type: 'card.viewed',
    description:
      'Someone other than you viewed your public profile (cardId null) or one of your cards. ' +
      'viewer is null for anonymous visitors; source is how they arrived (qr, link or nfc). ' +
      'An endpoint with coalesceSeconds > 0 gets the views of one card (or of the profile) within that many ' +
      'seconds of the first as one delivery, sent when the window closes (coalescedExample): id, timestamp, ' +
      'viewer and source are those of the first view, and data adds count (every view, anonymous and repeated ' +
      `ones included), firstViewedAt, lastViewedAt and viewers (distinct signed-in viewers in order, at most ${MAX_COALESCED_VIEWERS}).`,
    example: {
      id: 'e4da3b7f-bbce-4345-9d77-7a1b2c3d4e5f',
      type: 'card.viewed',
      timestamp: SAMPLE_TIMESTAMP,
      data: { userId: SAMPLE_OWNER_ID, cardId: SAMPLE_CARD_ID, viewer: SAMPLE_VISITOR, source: 'qr' },
    },
    coalescedExample: {
      id: 'e4da3b7f-bbce-4345-9d77-7a1b2c3d4e5f',
      type: 'card.viewed',
      timestamp: SAMPLE_TIMESTAMP,
      data: {
        userId: SAMPLE_OWNER_ID,
        cardId: SAMPLE_CARD_ID,
        viewer: SAMPLE_VISITOR,
        source: 'qr',
        count: 7,
        firstViewedAt: SAMPLE_TIMESTAMP,
        lastViewedAt: '2026-11-28T12:00:54.210Z',
        viewers: [SAMPLE_VISITOR, SAMPLE_OTHER_VISITOR],
      },
    },
  },
  'contact.saved': {
    type: 'contact.saved',
    description: 'A signed-in user saved one of your cards to their contacts for the first time.',
    example: {
      id: '1679091c-5a88-4faf-9fb5-e6087eb1b2dc',
      type: 'contact.saved',
      timestamp: SAMPLE_TIMESTAMP,
      data: { userId: SAMPLE_OWNER_ID, cardId: SAMPLE_CARD_ID, savedBy: SAMPLE_VISITOR },
    },
  },
};

/** What `GET /api/webhooks/event-types` lists: the subscribable events, each with a sample envelope. */
export function eventCatalogue(): Array<CatalogueEntry<SubscribableEventType>> {
  return SUBSCRIBABLE_EVENT_TYPES.map((type) => structuredClone(CATALOGUE[type]));
}
