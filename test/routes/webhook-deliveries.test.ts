import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestApp } from '../helpers/app.ts';
import { deleteDelivery, insertAttempt, insertDelivery as writeDelivery, setDelivery } from '../helpers/deliveries.ts';
import { asUser, signUp, type Session } from '../helpers/users.ts';
import { buildWebhookTestApp } from '../helpers/webhook-api.ts';

type Status = 'pending' | 'success' | 'failed' | 'cancelled';
const STATUSES: Status[] = ['pending', 'success', 'failed', 'cancelled'];
const TYPES = ['card.viewed', 'contact.saved', 'webhook.test'] as const;
const T0 = Date.parse('2026-11-01T00:00:00.000Z');

describe('webhook delivery routes', () => {
  let t: TestApp;
  let alice: Session;
  let bob: Session;
  let endpointId: string;
  let otherEndpointId: string;
  let bobEndpointId: string;
  /** Alice's 25 deliveries on `endpointId`, oldest first. */
  let deliveries: Array<{ id: string; status: Status; eventType: string }>;
  let detailed: string;

  const get = (user: Session | undefined, url: string) => asUser(t.app, user, { method: 'GET', url });

  async function createEndpoint(user: Session, url: string): Promise<string> {
    const res = await asUser(t.app, user, { method: 'POST', url: '/api/webhooks', payload: { url, events: ['card.viewed'] } });
    expect(res.statusCode).toBe(201);
    return res.json().id;
  }

  async function insertDelivery(endpoint: string, i: number, status: Status, eventType: string) {
    const createdAt = new Date(T0 + i * 60_000);
    const finished = status !== 'pending';
    const { id } = await writeDelivery(t.db, {
      endpointId: endpoint,
      eventType,
      payload: { id: `event-${i}`, type: eventType, data: { n: i } },
      status,
      attempts: i % 4,
      createdAt,
      ...(finished
        ? {
            responseCode: status === 'success' ? 200 : status === 'failed' ? 500 : null,
            errorMessage: status === 'failed' ? 'HTTP 500' : null,
            finishedAt: createdAt,
          }
        : { nextRetryAt: new Date(createdAt.getTime() + 30_000) }),
    });
    return { id, status, eventType };
  }

  beforeAll(async () => {
    t = await buildWebhookTestApp();
    alice = await signUp(t.app, 'alice');
    bob = await signUp(t.app, 'bob');
    endpointId = await createEndpoint(alice, 'https://hooks.example.com/a');
    otherEndpointId = await createEndpoint(alice, 'https://hooks.example.com/b');
    bobEndpointId = await createEndpoint(bob, 'https://hooks.example.com/bob');
    deliveries = [];
    for (let i = 0; i < 25; i++) {
      deliveries.push(await insertDelivery(endpointId, i, STATUSES[i % 4]!, TYPES[i % 3]!));
    }
    await insertDelivery(otherEndpointId, 100, 'pending', 'card.viewed');
    await insertDelivery(bobEndpointId, 101, 'pending', 'card.viewed');

    // Attempts inserted out of order: the API orders them by attemptNumber.
    const target = deliveries[5]!;
    detailed = target.id;
    await setDelivery(t.db, detailed, { attempts: 3, status: 'failed', responseCode: null });
    for (const n of [3, 1, 2]) {
      await insertAttempt(t.db, {
        deliveryId: detailed,
        attemptNumber: n,
        startedAt: new Date(T0 + n * 1000),
        durationMs: 10 * n,
        responseCode: n === 2 ? null : 500,
        responseBody: n === 2 ? null : `error body ${n}`,
        error: n === 2 ? 'connect ECONNREFUSED' : null,
      });
    }
  });
  afterAll(async () => t.close());

  describe('GET /api/webhooks/:id/deliveries', () => {
    it('pages through the deliveries newest first with default page and limit', async () => {
      const res = await get(alice, `/api/webhooks/${endpointId}/deliveries`);
      expect(res.statusCode).toBe(200);
      const body = res.json();
      expect(body.pagination).toEqual({ page: 1, limit: 20, total: 25, totalPages: 2 });
      const newestFirst = [...deliveries].reverse().map((d) => d.id);
      expect(body.data.map((d: { id: string }) => d.id)).toEqual(newestFirst.slice(0, 20));

      const page2 = (await get(alice, `/api/webhooks/${endpointId}/deliveries?page=2`)).json();
      expect(page2.data.map((d: { id: string }) => d.id)).toEqual(newestFirst.slice(20));
      expect(page2.pagination).toEqual({ page: 2, limit: 20, total: 25, totalPages: 2 });
    });

    it('lists items without payloads, with the number of attempts', async () => {
      const body = (await get(alice, `/api/webhooks/${endpointId}/deliveries?limit=1`)).json();
      const newest = deliveries[24]!;
      expect(body.data).toEqual([
        {
          id: newest.id,
          endpointId,
          eventId: expect.stringMatching(/^[0-9a-f-]{36}$/),
          eventType: newest.eventType,
          status: newest.status,
          attempts: 24 % 4,
          responseCode: null,
          nextRetryAt: new Date(T0 + 24 * 60_000 + 30_000).toISOString(),
          // 0 attempts made (24 % 4): the next one, then the whole 200ms,400ms,800ms schedule.
          retriesUntil: new Date(T0 + 24 * 60_000 + 30_000 + 1_400).toISOString(),
          errorMessage: null,
          deliveredAt: null,
          createdAt: new Date(T0 + 24 * 60_000).toISOString(),
          updatedAt: expect.any(String),
        },
      ]);
      expect(body.pagination).toEqual({ page: 1, limit: 1, total: 25, totalPages: 25 });
    });

    it('honours limit and page, and an empty page past the end', async () => {
      const res = (await get(alice, `/api/webhooks/${endpointId}/deliveries?limit=10&page=3`)).json();
      expect(res.data).toHaveLength(5);
      expect(res.pagination).toEqual({ page: 3, limit: 10, total: 25, totalPages: 3 });
      const past = (await get(alice, `/api/webhooks/${endpointId}/deliveries?limit=100&page=9`)).json();
      expect(past).toEqual({ data: [], pagination: { page: 9, limit: 100, total: 25, totalPages: 1 } });
    });

    it.each(STATUSES)('filters by status %s', async (status) => {
      const expected = deliveries
        .filter((d) => (d.id === detailed ? 'failed' : d.status) === status)
        .map((d) => d.id)
        .reverse();
      const body = (await get(alice, `/api/webhooks/${endpointId}/deliveries?status=${status}&limit=100`)).json();
      expect(body.data.map((d: { id: string }) => d.id)).toEqual(expected);
      expect(body.data.every((d: { status: string }) => d.status === status)).toBe(true);
      expect(body.pagination.total).toBe(expected.length);
    });

    it.each(TYPES)('filters by event type %s, also with a status', async (eventType) => {
      const body = (await get(alice, `/api/webhooks/${endpointId}/deliveries?eventType=${eventType}&limit=100`)).json();
      expect(body.data.map((d: { id: string }) => d.id)).toEqual(
        deliveries
          .filter((d) => d.eventType === eventType)
          .map((d) => d.id)
          .reverse(),
      );
      const both = (await get(alice, `/api/webhooks/${endpointId}/deliveries?eventType=${eventType}&status=success`)).json();
      expect(both.data.every((d: { status: string; eventType: string }) => d.status === 'success' && d.eventType === eventType)).toBe(true);
    });

    it('an endpoint without deliveries has an empty first page', async () => {
      const id = await createEndpoint(alice, 'https://hooks.example.com/empty');
      const body = (await get(alice, `/api/webhooks/${id}/deliveries`)).json();
      expect(body).toEqual({ data: [], pagination: { page: 1, limit: 20, total: 0, totalPages: 0 } });
    });

    it.each([
      'limit=101',
      'limit=0',
      'limit=-5',
      'limit=abc',
      'limit=1.5',
      'page=0',
      'page=-1',
      'page=x',
      'status=delivered',
      'eventType=card.deleted',
    ])('400 VALIDATION_ERROR for ?%s', async (query) => {
      const res = await get(alice, `/api/webhooks/${endpointId}/deliveries?${query}`);
      expect(res.statusCode).toBe(400);
      expect(res.json().error.code).toBe('VALIDATION_ERROR');
    });

    it("404 for another user's endpoint, an unknown one, or a non-UUID id", async () => {
      for (const [user, id] of [
        [bob, endpointId],
        [alice, bobEndpointId],
        [alice, '00000000-0000-4000-8000-000000000000'],
        [alice, 'not-a-uuid'],
      ] as const) {
        const res = await get(user, `/api/webhooks/${id}/deliveries`);
        expect(res.statusCode).toBe(404);
        expect(res.json().error.code).toBe('NOT_FOUND');
      }
    });

    it('401 without a token', async () => {
      expect((await get(undefined, `/api/webhooks/${endpointId}/deliveries`)).statusCode).toBe(401);
    });
  });

  describe('GET /api/webhooks/:id/deliveries/:deliveryId', () => {
    it('shows the payload and the attempts in order', async () => {
      const res = await get(alice, `/api/webhooks/${endpointId}/deliveries/${detailed}`);
      expect(res.statusCode).toBe(200);
      const body = res.json();
      expect(body).toEqual({
        id: detailed,
        endpointId,
        eventId: expect.any(String),
        eventType: deliveries[5]!.eventType,
        status: 'failed',
        attemptCount: 3,
        // The view takes a finished delivery's response code from its last attempt when its log row has none.
        responseCode: 500,
        nextRetryAt: null,
        retriesUntil: null,
        errorMessage: null,
        deliveredAt: null,
        createdAt: new Date(T0 + 5 * 60_000).toISOString(),
        updatedAt: expect.any(String),
        payload: { id: 'event-5', type: deliveries[5]!.eventType, data: { n: 5 } },
        attempts: [1, 2, 3].map((n) => ({
          attemptNumber: n,
          startedAt: new Date(T0 + n * 1000).toISOString(),
          durationMs: 10 * n,
          responseCode: n === 2 ? null : 500,
          responseBody: n === 2 ? null : `error body ${n}`,
          error: n === 2 ? 'connect ECONNREFUSED' : null,
          // Attempts that recorded nothing signed (like those logged before it was recorded), none refused.
          signature: null,
          hints: [],
        })),
      });
    });

    it('retriesUntil: planned last attempt of a pending delivery, null once it is not pending', async () => {
      const nextRetryAt = new Date(T0 + 3_600_000);
      const row = await insertDelivery(otherEndpointId, 200, 'pending', 'card.viewed');
      const detail = async () => (await get(alice, `/api/webhooks/${otherEndpointId}/deliveries/${row.id}`)).json();
      // Schedule 200ms,400ms,800ms: after 1 attempt, the next one (#2) may be followed by #3 and #4.
      for (const [attempts, remaining] of [
        [0, 1_400],
        [1, 1_200],
        [2, 800],
        [3, 0],
        [5, 0],
      ] as const) {
        await setDelivery(t.db, row.id, { attempts, nextRetryAt });
        expect((await detail()).retriesUntil, `after ${attempts} attempts`).toBe(new Date(nextRetryAt.getTime() + remaining).toISOString());
      }
      const listed = (await get(alice, `/api/webhooks/${otherEndpointId}/deliveries?status=pending`)).json();
      expect(listed.data.find((d: { id: string }) => d.id === row.id).retriesUntil).toBe(nextRetryAt.toISOString());

      for (const status of ['success', 'failed', 'cancelled'] as const) {
        await setDelivery(t.db, row.id, { status });
        expect((await detail()).retriesUntil).toBeNull();
      }
      await deleteDelivery(t.db, row.id);
      const finished = (await get(alice, `/api/webhooks/${endpointId}/deliveries?status=success&limit=100`)).json();
      expect(finished.data.every((d: { retriesUntil: unknown }) => d.retriesUntil === null)).toBe(true);
    });

    it('a delivery without attempts has an empty attempt list', async () => {
      const id = deliveries[0]!.id;
      const body = (await get(alice, `/api/webhooks/${endpointId}/deliveries/${id}`)).json();
      expect(body).toMatchObject({ id, attempts: [], attemptCount: 0, status: 'pending' });
    });

    it("404 for another user's delivery, a delivery of another endpoint, and bad ids", async () => {
      const bobDelivery = await t.db.prisma.webhookDelivery.findFirstOrThrow({ where: { endpointId: bobEndpointId } });
      const otherDelivery = await t.db.prisma.webhookDelivery.findFirstOrThrow({ where: { endpointId: otherEndpointId } });
      for (const [user, endpoint, delivery] of [
        [bob, endpointId, detailed],
        [bob, bobEndpointId, detailed],
        [alice, bobEndpointId, bobDelivery.id],
        [alice, endpointId, bobDelivery.id],
        [alice, endpointId, otherDelivery.id],
        [alice, endpointId, '00000000-0000-4000-8000-000000000000'],
        [alice, endpointId, 'nope'],
        [alice, 'nope', detailed],
      ] as const) {
        const res = await get(user, `/api/webhooks/${endpoint}/deliveries/${delivery}`);
        expect(res.statusCode, `${endpoint}/${delivery}`).toBe(404);
        expect(res.json().error.code).toBe('NOT_FOUND');
      }
    });

    it('401 without a token', async () => {
      expect((await get(undefined, `/api/webhooks/${endpointId}/deliveries/${detailed}`)).statusCode).toBe(401);
    });
  });
});
