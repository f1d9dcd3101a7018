import { describe, it, expect } from 'vitest';
import {
  EVENT_DATA_SCHEMAS,
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
