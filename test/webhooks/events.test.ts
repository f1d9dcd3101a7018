import { describe, it, expect } from 'vitest';
import {
  coalescedCardViewedData,
  EVENT_DATA_SCHEMAS,
  MAX_COALESCED_VIEWERS,
  SUBSCRIBABLE_EVENT_TYPES,
  eventCatalogue,
  isSubscribableEventType,
} from '../../src/webhooks/events.ts';

describe('event catalogue', () => {
  it('lists exactly the subscribable event types', () => {
    expect(eventCatalogue().map((entry) => entry.type)).toEqual(['card.viewed', 'contact.saved']);
  });

  it('gives each event a description and an example envelope that validates', () => {
    for (const entry of eventCatalogue()) {
      expect(entry.description.length).toBeGreaterThan(0);
      expect(entry.example.type).toBe(entry.type);
      expect(entry.example.id).toMatch(/^[0-9a-f-]{36}$/);
      expect(new Date(entry.example.timestamp).toISOString()).toBe(entry.example.timestamp);
      expect(EVENT_DATA_SCHEMAS[entry.type].safeParse(entry.example.data).success).toBe(true);
    }
  });

  it('documents the coalesced card.viewed body with an example that validates, for card.viewed only', () => {
    const [viewed, saved] = eventCatalogue();
    const example = viewed!.coalescedExample!;
    expect(example).toMatchObject({ id: viewed!.example.id, type: 'card.viewed', timestamp: viewed!.example.timestamp });
    expect(coalescedCardViewedData.safeParse(example.data).success).toBe(true);
    // The contract fields are the plain example's: the coalesced body only adds fields.
    expect(example.data).toMatchObject(viewed!.example.data);
    expect(saved!.coalescedExample).toBeUndefined();
  });

  it('hands out copies, so a caller cannot change the documented examples', () => {
    const first = eventCatalogue();
    first[0]!.example.id = 'changed';
    expect(eventCatalogue()[0]!.example.id).not.toBe('changed');
  });
});

describe('event types', () => {
  it('does not let endpoints subscribe to webhook.test', () => {
    expect(SUBSCRIBABLE_EVENT_TYPES).not.toContain('webhook.test');
    expect(isSubscribableEventType('webhook.test')).toBe(false);
    expect(isSubscribableEventType('card.viewed')).toBe(true);
    expect(isSubscribableEventType('card.deleted')).toBe(false);
  });
});

describe('event data schemas', () => {
  const owner = '8f14e45f-ceea-4e7a-9c1b-2d3f4a5b6c7d';

  it('accepts an anonymous profile view', () => {
    const data = { userId: owner, cardId: null, viewer: null, source: 'link' };
    expect(EVENT_DATA_SCHEMAS['card.viewed'].safeParse(data).success).toBe(true);
  });

  it('lists at most MAX_COALESCED_VIEWERS viewers in a coalesced card.viewed', () => {
    const viewer = (i: number) => ({ id: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`, username: `v${i}` });
    const data = (n: number) => ({
      userId: owner,
      cardId: null,
      viewer: viewer(0),
      source: 'qr',
      count: n,
      firstViewedAt: '2026-11-28T12:00:00.000Z',
      lastViewedAt: '2026-11-28T12:00:01.000Z',
      viewers: Array.from({ length: n }, (_, i) => viewer(i)),
    });
    expect(coalescedCardViewedData.safeParse(data(MAX_COALESCED_VIEWERS)).success).toBe(true);
    expect(coalescedCardViewedData.safeParse(data(MAX_COALESCED_VIEWERS + 1)).success).toBe(false);
  });

  it('rejects an unknown view source', () => {
    const data = { userId: owner, cardId: null, viewer: null, source: 'email' };
    expect(EVENT_DATA_SCHEMAS['card.viewed'].safeParse(data).success).toBe(false);
  });

  it('requires savedBy on contact.saved and endpointId on webhook.test', () => {
    expect(EVENT_DATA_SCHEMAS['contact.saved'].safeParse({ userId: owner, cardId: owner }).success).toBe(false);
    expect(EVENT_DATA_SCHEMAS['webhook.test'].safeParse({ endpointId: owner }).success).toBe(true);
    expect(EVENT_DATA_SCHEMAS['webhook.test'].safeParse({}).success).toBe(false);
  });
});
