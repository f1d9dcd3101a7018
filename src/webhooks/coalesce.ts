import type { CoalescedCardViewedEnvelope, EventEnvelope, EventType } from './events.ts';

/**
 * Coalescing of `card.viewed`, opt-in per endpoint (`coalesceSeconds` > 0): the first view of
 * a card opens a delivery due a window later; the views of the same card that arrive before it
 * is claimed fold into it (DeliveryQueue.insertForSubscribers). These are the pure parts: which
 * events coalesce, under which key, and the body a delivery opens with.
 *
 * Viewers are de-duplicated by id: a receiver wants to know who looked, and one person
 * refreshing a page must not fill the list; `count` still counts every view.
 */

/** What a dispatch needs to let an event open or join a coalesced delivery. */
export interface Coalescing {
  /**
   * Views with the same key fold together, per endpoint. The profile (cardId null) is a key of
   * its own; the event type is part of it so another event could coalesce later without clashes.
   */
  key: string;
  /** The stored payload when this event opens a delivery: the envelope plus a count of one. */
  payload: CoalescedCardViewedEnvelope;
}

const PROFILE_KEY = 'profile';

/** How `envelope` coalesces, for endpoints that ask for it; undefined for events that never do. */
export function coalescingOf(envelope: EventEnvelope<EventType>): Coalescing | undefined {
  if (!isCardViewed(envelope)) return undefined;
  const { data, timestamp } = envelope;
  return {
    key: `${envelope.type}:${data.cardId ?? PROFILE_KEY}`,
    payload: {
      ...envelope,
      data: {
        ...data,
        count: 1,
        firstViewedAt: timestamp,
        lastViewedAt: timestamp,
        viewers: data.viewer ? [{ id: data.viewer.id, username: data.viewer.username }] : [],
      },
    },
  };
}

function isCardViewed(envelope: EventEnvelope<EventType>): envelope is EventEnvelope<'card.viewed'> {
  return envelope.type === 'card.viewed';
}
