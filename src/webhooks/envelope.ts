import type {
  CardViewedData,
  CoalescedCardViewedData,
  CoalescedViewFields,
  ContactSavedData,
  EventEnvelope,
  EventType,
  WebhookTestData,
} from './events.ts';

/**
 * The webhook body (docs/receiving-webhooks.md): `{"id","type","timestamp","data"}` with the data
 * keys in the documented order.
 *
 * The bytes are rendered once, when the event is dispatched, and stored as text
 * (`webhook_events.body`): every attempt, retry, redelivery and worker process sends exactly
 * them, and the delivery log shows them. Rendering builds every object key by key in the
 * canonical order below, so a coalesced delivery, whose payload is folded as JSONB (which does
 * not keep key order) until its claim, renders to the same bytes on every attempt too.
 */

type JsonObject = Record<string, unknown>;

/** The envelope of an event, before it is rendered. */
export function buildEnvelope<T extends EventType>(eventId: string, type: T, data: EventEnvelope<T>['data'], at: Date): EventEnvelope<T> {
  return { id: eventId, type, timestamp: at.toISOString(), data };
}

/** (event id, type, envelope or folded payload) → the exact body bytes to sign and send. */
export function renderBody(eventId: string, eventType: string, payload: unknown): string {
  const stored = asObject(payload);
  const envelope = {
    id: eventId,
    type: eventType,
    timestamp: stored.timestamp,
    data: canonicalData(eventType, asObject(stored.data)),
  };
  return JSON.stringify(envelope);
}

// Each case builds the type events.ts infers from the zod schema it publishes for that body.
function canonicalData(eventType: string, data: JsonObject): unknown {
  switch (eventType) {
    case 'card.viewed': {
      const d = data as unknown as CardViewedData & Partial<CoalescedViewFields>;
      const contract: CardViewedData = { userId: d.userId, cardId: d.cardId ?? null, viewer: optionalUserRef(d.viewer), source: d.source };
      // Only a coalesced delivery stores a count; every other body stays exactly the contract's.
      if (d.count === undefined) return contract;
      const folded = data as unknown as CoalescedCardViewedData;
      const coalesced: CoalescedCardViewedData = {
        ...contract,
        count: folded.count,
        firstViewedAt: folded.firstViewedAt,
        lastViewedAt: folded.lastViewedAt,
        viewers: (folded.viewers ?? []).map(userRef),
      };
      return coalesced;
    }
    case 'contact.saved': {
      const d = data as unknown as ContactSavedData;
      const saved: ContactSavedData = { userId: d.userId, cardId: d.cardId, savedBy: userRef(d.savedBy) };
      return saved;
    }
    case 'webhook.test': {
      const d = data as unknown as WebhookTestData;
      const test: WebhookTestData = { endpointId: d.endpointId };
      return test;
    }
    default:
      // A type this version does not know (written by a newer one): keys sorted, still stable.
      return sortKeys(data);
  }
}

type UserRef = ContactSavedData['savedBy'];

function userRef(ref: UserRef): UserRef {
  return { id: ref.id, username: ref.username };
}

function optionalUserRef(ref: UserRef | null | undefined): UserRef | null {
  return ref ? userRef(ref) : null;
}

function asObject(value: unknown): JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as JsonObject) : {};
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (typeof value !== 'object' || value === null) return value;
  return Object.fromEntries(
    Object.keys(value)
      .sort()
      .map((key) => [key, sortKeys((value as JsonObject)[key])]),
  );
}
