import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SUBSCRIBABLE_EVENT_TYPES } from '../../src/webhooks/events.ts';
import { SecretBox } from '../../src/webhooks/secrets.ts';
import type { TestApp } from '../helpers/app.ts';
import { insertAttempt, insertDelivery as writeDelivery, setDelivery } from '../helpers/deliveries.ts';
import { asUser, signUp, type Session } from '../helpers/users.ts';
import { buildWebhookTestApp } from '../helpers/webhook-api.ts';

const SECRET_FORMAT = /^whsec_[A-Za-z0-9+/]{43}=$/;
const DAY_MS = 86_400_000;

describe('webhook endpoint routes', () => {
  let t: TestApp;
  let box: SecretBox;
  let alice: Session;
  let bob: Session;
  let urlCounter = 0;
  const freshUrl = () => `https://hooks.example.com/devcard/${++urlCounter}`;

  const create = (user: Session | undefined, payload: unknown) =>
    asUser(t.app, user, { method: 'POST', url: '/api/webhooks', payload: payload as object });
  const get = (user: Session | undefined, url: string) => asUser(t.app, user, { method: 'GET', url });
  const patch = (user: Session | undefined, url: string, payload?: unknown) =>
    asUser(t.app, user, { method: 'PATCH', url, ...(payload === undefined ? {} : { payload: payload as object }) });
  const del = (user: Session | undefined, url: string) => asUser(t.app, user, { method: 'DELETE', url });

  async function createEndpoint(user: Session, extra: Record<string, unknown> = {}) {
    const res = await create(user, { url: freshUrl(), events: ['card.viewed'], ...extra });
    expect(res.statusCode).toBe(201);
    return res.json() as { id: string; url: string; secret: string };
  }

  async function insertDelivery(endpointId: string, status: 'pending' | 'success' | 'failed' | 'cancelled') {
    return writeDelivery(t.db, {
      endpointId,
      eventType: 'card.viewed',
      payload: { hello: 'world' },
      status,
      ...(status === 'pending' ? { nextRetryAt: new Date(Date.now() + 60_000), claimToken: crypto.randomUUID() } : {}),
    });
  }

  const expectError = (res: { statusCode: number; json(): unknown }, status: number, code: string) => {
    expect(res.statusCode).toBe(status);
    expect(res.json()).toMatchObject({ error: { code, message: expect.any(String) } });
  };

  beforeAll(async () => {
    t = await buildWebhookTestApp();
    box = new SecretBox(t.config.webhookEncryptionKey);
    alice = await signUp(t.app, 'alice');
    bob = await signUp(t.app, 'bob');
  });
  afterAll(async () => t.close());

  describe('authentication', () => {
    it.each([
      ['GET', '/api/webhooks/event-types'],
      ['POST', '/api/webhooks'],
      ['GET', '/api/webhooks'],
      ['GET', '/api/webhooks/00000000-0000-4000-8000-000000000000'],
      ['PATCH', '/api/webhooks/00000000-0000-4000-8000-000000000000'],
      ['DELETE', '/api/webhooks/00000000-0000-4000-8000-000000000000'],
      ['PATCH', '/api/webhooks/00000000-0000-4000-8000-000000000000/rotate-secret'],
    ] as const)('%s %s needs a valid bearer token', async (method, url) => {
      expectError(await t.app.inject({ method, url }), 401, 'UNAUTHORIZED');
      expectError(await t.app.inject({ method, url, headers: { authorization: 'Bearer nope' } }), 401, 'INVALID_TOKEN');
    });
  });

  describe('GET /api/webhooks/event-types', () => {
    it('lists the subscribable events with a description and an example envelope', async () => {
      const res = await get(alice, '/api/webhooks/event-types');
      expect(res.statusCode).toBe(200);
      const types = res.json() as Array<{ type: string; description: string; example: { type: string; data: object } }>;
      expect(types.map((entry) => entry.type)).toEqual([...SUBSCRIBABLE_EVENT_TYPES]);
      for (const entry of types) {
        expect(entry.description.length).toBeGreaterThan(0);
        expect(entry.example).toMatchObject({ type: entry.type, id: expect.any(String), timestamp: expect.any(String) });
        expect(entry.example.data).toBeTypeOf('object');
      }
      // card.viewed also shows the coalesced form; no other event coalesces.
      const byType = new Map(types.map((entry) => [entry.type, entry as typeof entry & { coalescedExample?: { data: object } }]));
      expect(byType.get('card.viewed')?.coalescedExample?.data).toMatchObject({ count: expect.any(Number), viewers: expect.any(Array) });
      expect(byType.get('card.viewed')?.description).toContain('coalesceSeconds');
      expect(byType.get('contact.saved')).not.toHaveProperty('coalescedExample');
    });

    it("gives each body's JSON Schema (draft 2020-12), which its example satisfies and the other examples do not", async () => {
      const types = (await get(alice, '/api/webhooks/event-types')).json() as Array<{
        type: string;
        schema: { $schema: string };
        example: unknown;
        coalescedSchema?: object;
        coalescedExample?: unknown;
      }>;
      const ajv = new Ajv2020({ allErrors: true });
      addFormats.default(ajv);
      const examples = types.flatMap((entry) => [entry.example, ...(entry.coalescedExample ? [entry.coalescedExample] : [])]);
      const forms = types.flatMap((entry) => [
        { schema: entry.schema, example: entry.example },
        ...(entry.coalescedSchema ? [{ schema: entry.coalescedSchema, example: entry.coalescedExample }] : []),
      ]);
      expect(forms).toHaveLength(3);
      for (const { schema, example } of forms) {
        expect(schema).toMatchObject({ $schema: 'https://json-schema.org/draft/2020-12/schema', type: 'object' });
        const validate = ajv.compile(schema);
        expect(examples.filter((candidate) => validate(candidate))).toEqual([example]);
      }
    });
  });

  describe('POST /api/webhooks', () => {
    it('creates an endpoint and shows its secret once', async () => {
      const url = freshUrl();
      const res = await create(alice, { url, events: ['card.viewed', 'contact.saved'], description: '  CRM sync  ' });
      expect(res.statusCode).toBe(201);
      const body = res.json();
      expect(body).toEqual({
        id: expect.stringMatching(/^[0-9a-f-]{36}$/),
        url,
        description: 'CRM sync',
        events: ['card.viewed', 'contact.saved'],
        isActive: true,
        disabledAt: null,
        disabledReason: null,
        consecutiveFailures: 0,
        coalesceSeconds: 0,
        cardIds: [],
        maxPerSecond: null,
        previousSecretExpiresAt: null,
        createdAt: expect.any(String),
        updatedAt: expect.any(String),
        secret: expect.stringMatching(SECRET_FORMAT),
      });
      expect(Buffer.from(body.secret.slice('whsec_'.length), 'base64')).toHaveLength(32);

      // Stored only sealed: the row opens to the shown secret, and no column holds the plaintext.
      const row = await t.db.prisma.webhookEndpoint.findUniqueOrThrow({ where: { id: body.id } });
      expect(row.userId).toBe(alice.id);
      expect(box.open(row.secretEncrypted)).toBe(body.secret);
      const raw = await t.db.sql.query<Record<string, unknown>>('SELECT * FROM webhook_endpoints WHERE id = $1', [body.id]);
      expect(raw).toHaveLength(1);
      const rawText = JSON.stringify(raw);
      expect(rawText).not.toContain(body.secret);
      expect(rawText).not.toContain(body.secret.slice('whsec_'.length));
      expect(rawText).not.toContain('whsec_');
    });

    it('gives every endpoint its own secret', async () => {
      const a = await createEndpoint(alice);
      const b = await createEndpoint(alice);
      expect(a.secret).not.toBe(b.secret);
      await del(alice, `/api/webhooks/${a.id}`);
      await del(alice, `/api/webhooks/${b.id}`);
    });

    it.each([
      ['url is missing', { events: ['card.viewed'] }],
      ['events is missing', { url: 'https://hooks.example.com/x' }],
      ['events is empty', { url: 'https://hooks.example.com/x', events: [] }],
      ['an event type is unknown', { url: 'https://hooks.example.com/x', events: ['card.deleted'] }],
      ['an event is not subscribable', { url: 'https://hooks.example.com/x', events: ['webhook.test'] }],
      ['events repeat', { url: 'https://hooks.example.com/x', events: ['card.viewed', 'card.viewed'] }],
      ['events is not an array', { url: 'https://hooks.example.com/x', events: 'card.viewed' }],
      ['a field is unknown', { url: 'https://hooks.example.com/x', events: ['card.viewed'], secret: 'whsec_mine' }],
      ['the description is too long', { url: 'https://hooks.example.com/x', events: ['card.viewed'], description: 'x'.repeat(501) }],
      ['url is not a string', { url: 42, events: ['card.viewed'] }],
      ['url is empty', { url: '', events: ['card.viewed'] }],
      ['the description holds a NUL character', { url: 'https://hooks.example.com/x', events: ['card.viewed'], description: 'a\u0000b' }],
      [
        'the description holds an unpaired surrogate',
        { url: 'https://hooks.example.com/x', events: ['card.viewed'], description: 'a\ud800b' },
      ],
      ['coalesceSeconds is negative', { url: 'https://hooks.example.com/x', events: ['card.viewed'], coalesceSeconds: -1 }],
      ['coalesceSeconds is over an hour', { url: 'https://hooks.example.com/x', events: ['card.viewed'], coalesceSeconds: 3601 }],
      ['coalesceSeconds is not whole', { url: 'https://hooks.example.com/x', events: ['card.viewed'], coalesceSeconds: 1.5 }],
      ['coalesceSeconds is a string', { url: 'https://hooks.example.com/x', events: ['card.viewed'], coalesceSeconds: '60' }],
      ['coalesceSeconds is null', { url: 'https://hooks.example.com/x', events: ['card.viewed'], coalesceSeconds: null }],
    ])('400 VALIDATION_ERROR when %s', async (_label, payload) => {
      const res = await create(alice, payload);
      expectError(res, 400, 'VALIDATION_ERROR');
      expect(res.json().error.details).toEqual(expect.arrayContaining([expect.objectContaining({ field: expect.any(String) })]));
    });

    it('400 for a body that is not JSON, and for no body at all', async () => {
      const bad = await asUser(t.app, alice, {
        method: 'POST',
        url: '/api/webhooks',
        headers: { 'content-type': 'application/json' },
        payload: '{"url":',
      });
      expectError(bad, 400, 'INVALID_JSON');
      expect((await asUser(t.app, alice, { method: 'POST', url: '/api/webhooks' })).statusCode).toBe(400);
    });

    it('takes coalesceSeconds from 0 to 3600, shows it everywhere, and names the field when it is refused', async () => {
      for (const coalesceSeconds of [0, 1, 3600]) {
        const res = await create(alice, { url: freshUrl(), events: ['card.viewed'], coalesceSeconds });
        expect(res.statusCode).toBe(201);
        const { id } = res.json();
        expect(res.json().coalesceSeconds).toBe(coalesceSeconds);
        expect((await get(alice, `/api/webhooks/${id}`)).json().coalesceSeconds).toBe(coalesceSeconds);
        expect((await get(alice, '/api/webhooks')).json().find((e: { id: string }) => e.id === id).coalesceSeconds).toBe(coalesceSeconds);
        expect((await t.db.prisma.webhookEndpoint.findUniqueOrThrow({ where: { id } })).coalesceSeconds).toBe(coalesceSeconds);
        await del(alice, `/api/webhooks/${id}`);
      }
      const refused = await create(alice, { url: freshUrl(), events: ['card.viewed'], coalesceSeconds: 3601 });
      expectError(refused, 400, 'VALIDATION_ERROR');
      expect(refused.json().error.details).toEqual([{ field: 'body.coalesceSeconds', message: expect.stringContaining('at most 3600') }]);
    });

    it('accepts a description of exactly 500 characters', async () => {
      const res = await create(alice, { url: freshUrl(), events: ['contact.saved'], description: 'd'.repeat(500) });
      expect(res.statusCode).toBe(201);
      await del(alice, `/api/webhooks/${res.json().id}`);
    });

    it.each([
      ['longer than 2048 characters', `https://hooks.example.com/${'a'.repeat(2048)}`],
      ['with credentials', 'https://user:pass@hooks.example.com/x'],
      ['with only a user name', 'https://user@hooks.example.com/x'],
      ['with an ftp scheme', 'ftp://hooks.example.com/x'],
      ['with a javascript scheme', 'javascript:alert(1)'],
      ['with a file scheme', 'file:///etc/passwd'],
      ['that is not a URL', 'not a url'],
      ['with a NUL character', 'https://hooks.example.com/a\u0000b'],
      ['with a newline inside', 'https://hooks.example.com/a\nb'],
      ['with a tab in the host', 'https://hooks.exam\tple.com/'],
      ['with an unpaired surrogate', 'https://hooks.example.com/\ud800'],
    ])('400 URL_NOT_ALLOWED for a URL %s', async (_label, url) => {
      const res = await create(alice, { url, events: ['card.viewed'] });
      expectError(res, 400, 'URL_NOT_ALLOWED');
      expect(res.json().error.message).toMatch(/not allowed: .+/);
    });

    it('accepts a URL of exactly 2048 characters', async () => {
      const prefix = 'https://hooks.example.com/';
      const url = prefix + 'b'.repeat(2048 - prefix.length);
      const res = await create(alice, { url, events: ['card.viewed'] });
      expect(res.statusCode).toBe(201);
      await del(alice, `/api/webhooks/${res.json().id}`);
    });

    it('409 ENDPOINT_URL_EXISTS for a URL the user already registered; another user may use it', async () => {
      const url = freshUrl();
      expect((await create(alice, { url, events: ['card.viewed'] })).statusCode).toBe(201);
      expectError(await create(alice, { url, events: ['contact.saved'] }), 409, 'ENDPOINT_URL_EXISTS');
      const bobs = await create(bob, { url, events: ['card.viewed'] });
      expect(bobs.statusCode).toBe(201);
      await t.db.prisma.webhookEndpoint.deleteMany({ where: { url } });
    });

    it('enforces the per-user limit without races: 20 parallel creates make exactly 5 endpoints', async () => {
      const carol = await signUp(t.app, 'carol');
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) => create(carol, { url: `https://hooks.example.com/race/${i}`, events: ['card.viewed'] })),
      );
      const statuses = results.map((res) => res.statusCode);
      expect(statuses.filter((s) => s === 201)).toHaveLength(5);
      expect(statuses.filter((s) => s === 409)).toHaveLength(15);
      for (const res of results.filter((r) => r.statusCode === 409)) {
        expect(res.json().error.code).toBe('ENDPOINT_LIMIT_REACHED');
      }
      expect(await t.db.prisma.webhookEndpoint.count({ where: { userId: carol.id } })).toBe(5);

      // Deleting one frees a slot.
      const [first] = results.filter((r) => r.statusCode === 201);
      expect((await del(carol, `/api/webhooks/${first!.json().id}`)).statusCode).toBe(204);
      expect((await create(carol, { url: freshUrl(), events: ['card.viewed'] })).statusCode).toBe(201);
      expectError(await create(carol, { url: freshUrl(), events: ['card.viewed'] }), 409, 'ENDPOINT_LIMIT_REACHED');
    });
  });

  describe('GET /api/webhooks and GET /api/webhooks/:id', () => {
    let dave: Session;
    let ids: string[];

    beforeAll(async () => {
      dave = await signUp(t.app, 'dave');
      ids = [(await createEndpoint(dave)).id, (await createEndpoint(dave, { description: 'second' })).id];
      await createEndpoint(bob);
    });

    it("lists only the caller's endpoints, oldest first, without secrets", async () => {
      const res = await get(dave, '/api/webhooks');
      expect(res.statusCode).toBe(200);
      expect(res.json().map((e: { id: string }) => e.id)).toEqual(ids);
      expect(res.body).not.toContain('whsec_');
      expect(res.body).not.toMatch(/secret"|secretEncrypted|previousSecretEncrypted/);
      expect(Object.keys(res.json()[0]).sort()).toEqual(
        [
          'id',
          'url',
          'description',
          'events',
          'isActive',
          'disabledAt',
          'disabledReason',
          'consecutiveFailures',
          'coalesceSeconds',
          'cardIds',
          'maxPerSecond',
          'previousSecretExpiresAt',
          'createdAt',
          'updatedAt',
        ].sort(),
      );
    });

    it('lists nothing for a user without endpoints', async () => {
      const erin = await signUp(t.app, 'erin');
      const res = await get(erin, '/api/webhooks');
      expect(res.statusCode).toBe(200);
      expect(res.json()).toEqual([]);
    });

    it('gets one endpoint without its secret', async () => {
      const res = await get(dave, `/api/webhooks/${ids[1]}`);
      expect(res.statusCode).toBe(200);
      expect(res.json()).toMatchObject({
        id: ids[1],
        description: 'second',
        isActive: true,
        disabledReason: null,
        consecutiveFailures: 0,
        nextAttemptAt: null,
      });
      expect(res.body).not.toContain('whsec_');
      expect(res.json()).not.toHaveProperty('secret');
    });

    it('nextAttemptAt is when the earliest pending delivery of this endpoint is due', async () => {
      const [mine, sibling] = [(await createEndpoint(dave)).id, (await createEndpoint(dave)).id];
      const at = (minutes: number) => new Date(Date.parse('2026-11-01T00:00:00.000Z') + minutes * 60_000);
      const place = async (endpointId: string, status: 'pending' | 'cancelled', minutes: number) => {
        const row = await insertDelivery(endpointId, status);
        // A finished delivery is in the log, which has no due time to give it.
        if (status === 'pending') await setDelivery(t.db, row.id, { nextRetryAt: at(minutes) });
      };
      // Earlier rows that must not count: another endpoint's pending one, this endpoint's cancelled one.
      await place(sibling, 'pending', 1);
      await place(mine, 'cancelled', 2);
      await place(mine, 'pending', 30);
      await place(mine, 'pending', 10);
      expect((await get(dave, `/api/webhooks/${mine}`)).json().nextAttemptAt).toBe(at(10).toISOString());
      expect((await get(dave, `/api/webhooks/${sibling}`)).json().nextAttemptAt).toBe(at(1).toISOString());

      // Disabling cancels the pending deliveries: nothing is due any more.
      expect((await patch(dave, `/api/webhooks/${mine}`, { isActive: false })).statusCode).toBe(200);
      expect((await get(dave, `/api/webhooks/${mine}`)).json().nextAttemptAt).toBeNull();
      for (const id of [mine, sibling]) expect((await del(dave, `/api/webhooks/${id}`)).statusCode).toBe(204);
    });

    it.each(['00000000-0000-4000-8000-000000000000', 'not-a-uuid', '1', "x' OR 1=1--"])('404 NOT_FOUND for id %s', async (id) => {
      expectError(await get(dave, `/api/webhooks/${encodeURIComponent(id)}`), 404, 'NOT_FOUND');
    });
  });

  describe('PATCH /api/webhooks/:id', () => {
    it('changes url, events and description', async () => {
      const endpoint = await createEndpoint(alice, { description: 'old' });
      const url = freshUrl();
      const res = await patch(alice, `/api/webhooks/${endpoint.id}`, { url, events: ['contact.saved'], description: 'new' });
      expect(res.statusCode).toBe(200);
      expect(res.json()).toMatchObject({ id: endpoint.id, url, events: ['contact.saved'], description: 'new' });
      expect(res.body).not.toContain('whsec_');

      const cleared = await patch(alice, `/api/webhooks/${endpoint.id}`, { description: null });
      expect(cleared.json()).toMatchObject({ description: null, url });
      // The same URL again is not a conflict with itself.
      expect((await patch(alice, `/api/webhooks/${endpoint.id}`, { url })).statusCode).toBe(200);
      await del(alice, `/api/webhooks/${endpoint.id}`);
    });

    it.each([
      ['an empty body', {}],
      ['an unknown field', { secret: 'whsec_x' }],
      ['empty events', { events: [] }],
      ['an unknown event type', { events: ['nope'] }],
      ['a non-boolean isActive', { isActive: 'no' }],
      ['a long description', { description: 'x'.repeat(501) }],
      ['a description with a NUL character', { description: '\u0000' }],
      ['a negative coalesceSeconds', { coalesceSeconds: -1 }],
      ['a coalesceSeconds over an hour', { coalesceSeconds: 3601 }],
      ['a fractional coalesceSeconds', { coalesceSeconds: 0.5 }],
      ['a coalesceSeconds as text', { coalesceSeconds: '5' }],
      ['a null coalesceSeconds', { coalesceSeconds: null }],
    ])('400 VALIDATION_ERROR for %s', async (_label, payload) => {
      const endpoint = await createEndpoint(alice);
      expectError(await patch(alice, `/api/webhooks/${endpoint.id}`, payload), 400, 'VALIDATION_ERROR');
      await del(alice, `/api/webhooks/${endpoint.id}`);
    });

    it('changes coalesceSeconds alone, and leaves it alone when other fields change', async () => {
      const endpoint = await createEndpoint(alice);
      const res = await patch(alice, `/api/webhooks/${endpoint.id}`, { coalesceSeconds: 3600 });
      expect(res.statusCode).toBe(200);
      expect(res.json()).toMatchObject({ id: endpoint.id, coalesceSeconds: 3600 });
      expect((await patch(alice, `/api/webhooks/${endpoint.id}`, { description: 'other' })).json().coalesceSeconds).toBe(3600);
      expect((await patch(alice, `/api/webhooks/${endpoint.id}`, { coalesceSeconds: 0 })).json().coalesceSeconds).toBe(0);
      expect((await get(alice, `/api/webhooks/${endpoint.id}`)).json().coalesceSeconds).toBe(0);
      const refused = await patch(alice, `/api/webhooks/${endpoint.id}`, { coalesceSeconds: 7200 });
      expectError(refused, 400, 'VALIDATION_ERROR');
      expect(refused.json().error.details).toEqual([{ field: 'body.coalesceSeconds', message: expect.stringContaining('at most 3600') }]);
      expect((await get(alice, `/api/webhooks/${endpoint.id}`)).json().coalesceSeconds).toBe(0);
      await del(alice, `/api/webhooks/${endpoint.id}`);
    });

    it('400 URL_NOT_ALLOWED for a bad new URL, and the endpoint is unchanged', async () => {
      const endpoint = await createEndpoint(alice);
      for (const url of [
        'https://u:p@hooks.example.com/',
        'ftp://hooks.example.com/',
        `https://h.example.com/${'c'.repeat(2048)}`,
        'https://hooks.example.com/\u0000',
      ]) {
        expectError(await patch(alice, `/api/webhooks/${endpoint.id}`, { url }), 400, 'URL_NOT_ALLOWED');
      }
      expect((await get(alice, `/api/webhooks/${endpoint.id}`)).json().url).toBe(endpoint.url);
      await del(alice, `/api/webhooks/${endpoint.id}`);
    });

    it("409 ENDPOINT_URL_EXISTS when the new URL is another of the user's endpoints", async () => {
      const a = await createEndpoint(alice);
      const b = await createEndpoint(alice);
      expectError(await patch(alice, `/api/webhooks/${b.id}`, { url: a.url }), 409, 'ENDPOINT_URL_EXISTS');
      await del(alice, `/api/webhooks/${a.id}`);
      await del(alice, `/api/webhooks/${b.id}`);
    });

    it('isActive false disables the endpoint and cancels its pending deliveries only, leaving an attempt a worker holds to finish', async () => {
      const endpoint = await createEndpoint(alice);
      const unclaimed = { claimToken: null, nextRetryAt: new Date() };
      const pending = await Promise.all(
        [await insertDelivery(endpoint.id, 'pending'), await insertDelivery(endpoint.id, 'pending')].map((d) =>
          setDelivery(t.db, d.id, unclaimed),
        ),
      );
      // Claimed under a live lease: the contract lets an attempt on the wire finish and be logged.
      const held = await insertDelivery(endpoint.id, 'pending');
      const done = await insertDelivery(endpoint.id, 'success');
      const failed = await insertDelivery(endpoint.id, 'failed');
      const other = await createEndpoint(alice);
      const otherPending = await insertDelivery(other.id, 'pending');

      const before = Date.now();
      const res = await patch(alice, `/api/webhooks/${endpoint.id}`, { isActive: false });
      expect(res.statusCode).toBe(200);
      expect(res.json()).toMatchObject({ isActive: false, disabledReason: 'disabled by user' });
      expect(new Date(res.json().disabledAt).getTime()).toBeGreaterThanOrEqual(before - 1000);

      for (const delivery of pending) {
        const row = await t.db.prisma.webhookDelivery.findUniqueOrThrow({ where: { id: delivery.id } });
        expect(row).toMatchObject({ status: 'cancelled', nextRetryAt: null, claimToken: null });
      }
      expect(await t.db.prisma.webhookDelivery.findUniqueOrThrow({ where: { id: held.id } })).toMatchObject({
        status: 'pending',
        claimToken: held.claimToken,
      });
      expect((await t.db.prisma.webhookDelivery.findUniqueOrThrow({ where: { id: done.id } })).status).toBe('success');
      expect((await t.db.prisma.webhookDelivery.findUniqueOrThrow({ where: { id: failed.id } })).status).toBe('failed');
      expect((await t.db.prisma.webhookDelivery.findUniqueOrThrow({ where: { id: otherPending.id } })).status).toBe('pending');
      await del(alice, `/api/webhooks/${endpoint.id}`);
      await del(alice, `/api/webhooks/${other.id}`);
    });

    it('isActive true re-enables the endpoint and resets its failure count', async () => {
      const endpoint = await createEndpoint(alice);
      await t.db.prisma.webhookEndpoint.update({
        where: { id: endpoint.id },
        data: { isActive: false, disabledAt: new Date(), disabledReason: '15 consecutive failed deliveries', consecutiveFailures: 15 },
      });
      const disabled = (await get(alice, `/api/webhooks/${endpoint.id}`)).json();
      expect(disabled).toMatchObject({ isActive: false, disabledReason: '15 consecutive failed deliveries', consecutiveFailures: 15 });

      // Disabling an already disabled endpoint keeps the original reason.
      const again = await patch(alice, `/api/webhooks/${endpoint.id}`, { isActive: false });
      expect(again.json()).toMatchObject({ isActive: false, disabledReason: '15 consecutive failed deliveries' });

      const res = await patch(alice, `/api/webhooks/${endpoint.id}`, { isActive: true });
      expect(res.statusCode).toBe(200);
      expect(res.json()).toMatchObject({ isActive: true, disabledAt: null, disabledReason: null, consecutiveFailures: 0 });
      await del(alice, `/api/webhooks/${endpoint.id}`);
    });
  });

  describe('DELETE /api/webhooks/:id', () => {
    it('deletes the endpoint with its deliveries and attempts', async () => {
      const endpoint = await createEndpoint(alice);
      const pending = await insertDelivery(endpoint.id, 'pending');
      await insertAttempt(t.db, { deliveryId: pending.id, attemptNumber: 1, startedAt: new Date(), durationMs: 5, responseCode: 500 });
      const res = await del(alice, `/api/webhooks/${endpoint.id}`);
      expect(res.statusCode).toBe(204);
      expect(res.body).toBe('');
      expectError(await get(alice, `/api/webhooks/${endpoint.id}`), 404, 'NOT_FOUND');
      expect(await t.db.prisma.webhookDelivery.count({ where: { endpointId: endpoint.id } })).toBe(0);
      expect(await t.db.prisma.webhookDeliveryAttempt.count({ where: { deliveryId: pending.id } })).toBe(0);
      expectError(await del(alice, `/api/webhooks/${endpoint.id}`), 404, 'NOT_FOUND');
    });

    it('404 for ids that are not UUIDs', async () => {
      expectError(await del(alice, '/api/webhooks/zzz'), 404, 'NOT_FOUND');
    });
  });

  describe('PATCH /api/webhooks/:id/rotate-secret', () => {
    it('issues a new secret and keeps the old one sealed for the default grace period', async () => {
      const endpoint = await createEndpoint(alice);
      const before = Date.now();
      const res = await patch(alice, `/api/webhooks/${endpoint.id}/rotate-secret`, {});
      expect(res.statusCode).toBe(200);
      const body = res.json();
      expect(Object.keys(body).sort()).toEqual(['id', 'previousSecretExpiresAt', 'secret']);
      expect(body.id).toBe(endpoint.id);
      expect(body.secret).toMatch(SECRET_FORMAT);
      expect(body.secret).not.toBe(endpoint.secret);
      const expiresAt = new Date(body.previousSecretExpiresAt).getTime();
      expect(expiresAt).toBeGreaterThanOrEqual(before + DAY_MS - 1000);
      expect(expiresAt).toBeLessThanOrEqual(Date.now() + DAY_MS + 1000);

      const row = await t.db.prisma.webhookEndpoint.findUniqueOrThrow({ where: { id: endpoint.id } });
      expect(box.open(row.secretEncrypted)).toBe(body.secret);
      expect(box.open(row.previousSecretEncrypted!)).toBe(endpoint.secret);
      expect(row.previousSecretExpiresAt?.getTime()).toBe(expiresAt);
      const rawText = JSON.stringify(await t.db.sql.query('SELECT * FROM webhook_endpoints WHERE id = $1', [endpoint.id]));
      expect(rawText).not.toContain('whsec_');

      // The endpoint itself shows when the old secret stops working, never a secret.
      const shown = await get(alice, `/api/webhooks/${endpoint.id}`);
      expect(shown.json().previousSecretExpiresAt).toBe(body.previousSecretExpiresAt);
      expect(shown.body).not.toContain('whsec_');
      await del(alice, `/api/webhooks/${endpoint.id}`);
    });

    it('works without a body and honours a custom grace period', async () => {
      const endpoint = await createEndpoint(alice);
      const noBody = await patch(alice, `/api/webhooks/${endpoint.id}/rotate-secret`);
      expect(noBody.statusCode).toBe(200);
      const hour = await patch(alice, `/api/webhooks/${endpoint.id}/rotate-secret`, { gracePeriodSeconds: 3600 });
      expect(hour.statusCode).toBe(200);
      const expiresAt = new Date(hour.json().previousSecretExpiresAt).getTime();
      expect(Math.abs(expiresAt - (Date.now() + 3_600_000))).toBeLessThan(5000);
      const row = await t.db.prisma.webhookEndpoint.findUniqueOrThrow({ where: { id: endpoint.id } });
      // The previous secret is the one current just before this rotation.
      expect(box.open(row.previousSecretEncrypted!)).toBe(noBody.json().secret);
      await del(alice, `/api/webhooks/${endpoint.id}`);
    });

    it('a grace period of 0 revokes the old secret at once', async () => {
      const endpoint = await createEndpoint(alice);
      await patch(alice, `/api/webhooks/${endpoint.id}/rotate-secret`, { gracePeriodSeconds: 600 });
      const res = await patch(alice, `/api/webhooks/${endpoint.id}/rotate-secret`, { gracePeriodSeconds: 0 });
      expect(res.statusCode).toBe(200);
      expect(res.json().previousSecretExpiresAt).toBeNull();
      const row = await t.db.prisma.webhookEndpoint.findUniqueOrThrow({ where: { id: endpoint.id } });
      expect(row.previousSecretEncrypted).toBeNull();
      expect(row.previousSecretExpiresAt).toBeNull();
      expect(box.open(row.secretEncrypted)).toBe(res.json().secret);
      await del(alice, `/api/webhooks/${endpoint.id}`);
    });

    it('accepts the maximum grace period of 7 days', async () => {
      const endpoint = await createEndpoint(alice);
      expect((await patch(alice, `/api/webhooks/${endpoint.id}/rotate-secret`, { gracePeriodSeconds: 604_800 })).statusCode).toBe(200);
      await del(alice, `/api/webhooks/${endpoint.id}`);
    });

    it.each([
      ['too long', { gracePeriodSeconds: 604_801 }],
      ['negative', { gracePeriodSeconds: -1 }],
      ['fractional', { gracePeriodSeconds: 1.5 }],
      ['a string', { gracePeriodSeconds: '60' }],
      ['an unknown field', { grace: 60 }],
    ])('400 VALIDATION_ERROR for a grace period that is %s', async (_label, payload) => {
      const endpoint = await createEndpoint(alice);
      expectError(await patch(alice, `/api/webhooks/${endpoint.id}/rotate-secret`, payload), 400, 'VALIDATION_ERROR');
      const row = await t.db.prisma.webhookEndpoint.findUniqueOrThrow({ where: { id: endpoint.id } });
      expect(box.open(row.secretEncrypted)).toBe(endpoint.secret);
      await del(alice, `/api/webhooks/${endpoint.id}`);
    });

    it('404 for unknown and non-UUID ids', async () => {
      expectError(await patch(alice, '/api/webhooks/00000000-0000-4000-8000-000000000000/rotate-secret', {}), 404, 'NOT_FOUND');
      expectError(await patch(alice, '/api/webhooks/nope/rotate-secret', {}), 404, 'NOT_FOUND');
    });
  });

  describe("another user's endpoint is a 404 on every route", () => {
    let endpoint: { id: string; secret: string; url: string };

    beforeAll(async () => {
      endpoint = await createEndpoint(alice, { description: 'private' });
    });

    it('GET, PATCH, DELETE and rotate-secret answer 404 and change nothing', async () => {
      const path = `/api/webhooks/${endpoint.id}`;
      expectError(await get(bob, path), 404, 'NOT_FOUND');
      expectError(await patch(bob, path, { description: 'mine now' }), 404, 'NOT_FOUND');
      expectError(await patch(bob, path, { isActive: false }), 404, 'NOT_FOUND');
      expectError(await patch(bob, path, { url: 'https://evil.example.com/' }), 404, 'NOT_FOUND');
      expectError(await patch(bob, `${path}/rotate-secret`, {}), 404, 'NOT_FOUND');
      expectError(await del(bob, path), 404, 'NOT_FOUND');
      expectError(await get(bob, `${path}/deliveries`), 404, 'NOT_FOUND');

      const row = await t.db.prisma.webhookEndpoint.findUniqueOrThrow({ where: { id: endpoint.id } });
      expect(row).toMatchObject({ description: 'private', isActive: true, url: endpoint.url, previousSecretEncrypted: null });
      expect(box.open(row.secretEncrypted)).toBe(endpoint.secret);
      expect((await get(bob, '/api/webhooks')).json().map((e: { id: string }) => e.id)).not.toContain(endpoint.id);
    });
  });
});

describe('webhook API rate limit', () => {
  let t: TestApp;
  afterAll(async () => t?.close());

  it('limits per user, across all their tokens, and answers 429 RATE_LIMITED', async () => {
    t = await buildWebhookTestApp({ env: { RATE_LIMIT_API_PER_MINUTE: '3' } });
    const frank = await signUp(t.app, 'frank');
    const grace = await signUp(t.app, 'grace');
    // A second, different token for the same user (another expiry): it must not buy a second budget.
    const secondToken = t.app.jwt.sign({ sub: frank.id, username: frank.username }, { expiresIn: '1h' });
    const frank2: Session = { ...frank, auth: { authorization: `Bearer ${secondToken}` } };
    expect(frank2.auth.authorization).not.toBe(frank.auth.authorization);

    const list = (user: Session) => asUser(t.app, user, { method: 'GET', url: '/api/webhooks' });
    const statuses = [await list(frank), await list(frank2), await list(frank), await list(frank2)].map((r) => r.statusCode);
    expect(statuses).toEqual([200, 200, 200, 429]);
    const limited = await list(frank);
    expect(limited.statusCode).toBe(429);
    expect(limited.json().error.code).toBe('RATE_LIMITED');
    expect((await list(grace)).statusCode).toBe(200);
  });
});
