import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { describe, it, expect, expectTypeOf } from 'vitest';
import type { z } from 'zod';
import { eventCatalogue, WEBHOOK_BODIES } from '../../src/webhooks/event-catalogue.ts';
import type { coalescedCardViewedEnvelope, EVENT_ENVELOPE_SCHEMAS } from '../../src/webhooks/events.ts';
import {
  coalescedCardViewedData,
  EVENT_DATA_SCHEMAS,
  MAX_COALESCED_VIEWERS,
  SUBSCRIBABLE_EVENT_TYPES,
  isSubscribableEventType,
  type CoalescedCardViewedEnvelope,
  type EventEnvelope,
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

  it("publishes each body's JSON Schema, which accepts its example and what the zod schema accepts, and nothing else", () => {
    const ajv = new Ajv2020({ allErrors: true });
    addFormats.default(ajv);
    const envelope = (type: string, data: object) => ({
      id: '8f14e45f-ceea-4e7a-9c1b-2d3f4a5b6c7d',
      type,
      timestamp: '2026-11-28T12:00:00.000Z',
      data,
    });
    for (const body of WEBHOOK_BODIES) {
      const validate = ajv.compile(body.schema);
      expect(validate(body.example), `${body.name}: ${ajv.errorsText(validate.errors)}`).toBe(true);
      expect(validate({ ...body.example, extra: 1 }), `${body.name} with an undocumented field`).toBe(false);
      expect(validate({ ...body.example, timestamp: 'yesterday' }), `${body.name} with a bad timestamp`).toBe(false);
      expect(validate({ ...body.example, type: 'card.deleted' }), `${body.name} with another type`).toBe(false);
    }
    const [plain, coalesced] = WEBHOOK_BODIES.map((body) => ajv.compile(body.schema));
    const viewed = eventCatalogue()[0]!;
    // The plain card.viewed body and the coalesced one are told apart by their schemas.
    expect(plain!(viewed.coalescedExample)).toBe(false);
    expect(coalesced!(viewed.example)).toBe(false);
    expect(plain!(envelope('card.viewed', { ...viewed.example.data, source: 'email' }))).toBe(false);
    expect(plain!(envelope('card.viewed', { ...viewed.example.data, cardId: null, viewer: null }))).toBe(true);
  });

  it('gives the route the same schemas as the published bodies', () => {
    const [viewed, saved] = eventCatalogue();
    const byName = new Map(WEBHOOK_BODIES.map((body) => [body.name, body]));
    expect(viewed!.schema).toEqual(byName.get('card.viewed')!.schema);
    expect(viewed!.coalescedSchema).toEqual(byName.get('card.viewed (coalesced)')!.schema);
    expect(saved!.schema).toEqual(byName.get('contact.saved')!.schema);
    expect(saved!.coalescedSchema).toBeUndefined();
    expect(WEBHOOK_BODIES.map((body) => body.name)).toEqual(['card.viewed', 'card.viewed (coalesced)', 'contact.saved', 'webhook.test']);
  });

  it('hands out copies, so a caller cannot change the documented examples', () => {
    const first = eventCatalogue();
    first[0]!.example.id = 'changed';
    expect(eventCatalogue()[0]!.example.id).not.toBe('changed');
  });
});

describe('envelope types', () => {
  it('are, for each event, the types the zod schemas infer', () => {
    expectTypeOf<EventEnvelope<'card.viewed'>>().toEqualTypeOf<z.infer<(typeof EVENT_ENVELOPE_SCHEMAS)['card.viewed']>>();
    expectTypeOf<EventEnvelope<'contact.saved'>>().toEqualTypeOf<z.infer<(typeof EVENT_ENVELOPE_SCHEMAS)['contact.saved']>>();
    expectTypeOf<EventEnvelope<'webhook.test'>>().toEqualTypeOf<z.infer<(typeof EVENT_ENVELOPE_SCHEMAS)['webhook.test']>>();
    expectTypeOf<CoalescedCardViewedEnvelope>().toEqualTypeOf<z.infer<typeof coalescedCardViewedEnvelope>>();
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
