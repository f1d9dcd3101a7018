import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp, type TestApp } from '../helpers/app.ts';
import { answer, startReceiver, type Receiver } from '../helpers/receiver.ts';
import { signUp, uniqueUsername, type Session } from '../helpers/users.ts';
import { sleep, waitFor } from '../helpers/wait.ts';
import { createEndpoint } from '../helpers/webhook-api.ts';

describe('webhook action routes and metrics', () => {
  let t: TestApp;
  let receiver: Receiver;
  let owner: Session;
  let stranger: Session;
  let endpoint: { id: string; secret: string };
  let sibling: { id: string; secret: string };
  let strangersEndpoint: { id: string; secret: string };

  beforeAll(async () => {
    t = await buildTestApp();
    receiver = await startReceiver();
    owner = await signUp(t.app, uniqueUsername('owner'));
    stranger = await signUp(t.app, uniqueUsername('stranger'));
    endpoint = await createEndpoint(t.app, owner, `${receiver.origin}/main`, ['contact.saved']);
    sibling = await createEndpoint(t.app, owner, `${receiver.origin}/sibling`, ['card.viewed']);
    strangersEndpoint = await createEndpoint(t.app, stranger, `${receiver.origin}/stranger`);
  });
  afterAll(async () => {
    await t?.close();
    await receiver?.close();
  });

  const post = (url: string, who?: Session) => t.app.inject({ method: 'POST', url, headers: who?.auth ?? {} });
  const delivery = (id: string) =>
    t.db.prisma.webhookDelivery.findUniqueOrThrow({ where: { id }, include: { attemptsLog: { orderBy: { attemptNumber: 'asc' } } } });
  const settled = (id: string) =>
    waitFor(async () => {
      const row = await delivery(id);
      return row.status !== 'pending' ? row : undefined;
    });

  describe('POST /api/webhooks/:id/test', () => {
    it('answers 202 {deliveryId} and sends webhook.test {endpointId} to this endpoint only', async () => {
      const res = await post(`/api/webhooks/${endpoint.id}/test`, owner);
      expect(res.statusCode).toBe(202);
      const { deliveryId } = res.json();
      expect(Object.keys(res.json())).toEqual(['deliveryId']);

      const row = await settled(deliveryId);
      expect(row).toMatchObject({ status: 'success', attempts: 1, endpointId: endpoint.id, eventType: 'webhook.test' });
      const [request] = receiver.at('/main');
      const timestamp = (row.payload as { timestamp: string }).timestamp;
      expect(request?.body).toBe(
        `{"id":"${row.eventId}","type":"webhook.test","timestamp":"${timestamp}","data":{"endpointId":"${endpoint.id}"}}`,
      );
      expect(request?.headers).toMatchObject({
        'webhook-id': deliveryId,
        'x-devcard-event': 'webhook.test',
        'x-devcard-delivery': deliveryId,
      });
      await sleep(100);
      expect(receiver.at('/sibling')).toHaveLength(0);
      expect(receiver.at('/stranger')).toHaveLength(0);
    });

    it("is a 404 for another user's endpoint, an unknown or malformed id; 401 without a token", async () => {
      for (const id of [strangersEndpoint.id, randomUUID(), 'not-a-uuid']) {
        const res = await post(`/api/webhooks/${id}/test`, owner);
        expect(res.statusCode).toBe(404);
        expect(res.json().error.code).toBe('NOT_FOUND');
      }
      expect((await post(`/api/webhooks/${endpoint.id}/test`)).statusCode).toBe(401);
      expect(await t.db.prisma.webhookDelivery.count({ where: { endpointId: strangersEndpoint.id } })).toBe(0);
    });

    it('is a 409 ENDPOINT_DISABLED for a disabled endpoint', async () => {
      const disabled = await createEndpoint(t.app, owner, `${receiver.origin}/disabled-test`);
      await t.app.inject({ method: 'PATCH', url: `/api/webhooks/${disabled.id}`, headers: owner.auth, payload: { isActive: false } });
      const res = await post(`/api/webhooks/${disabled.id}/test`, owner);
      expect(res.statusCode).toBe(409);
      expect(res.json().error.code).toBe('ENDPOINT_DISABLED');
      expect(await t.db.prisma.webhookDelivery.count({ where: { endpointId: disabled.id } })).toBe(0);
    });
  });

  describe('POST /api/webhooks/:id/deliveries/:deliveryId/redeliver', () => {
    it('sends the same delivery again (same id and body), counting attempts on', async () => {
      const { deliveryId } = (await post(`/api/webhooks/${endpoint.id}/test`, owner)).json();
      await settled(deliveryId);
      const before = receiver.requests.filter((r) => r.headers['webhook-id'] === deliveryId);
      expect(before).toHaveLength(1);

      const res = await post(`/api/webhooks/${endpoint.id}/deliveries/${deliveryId}/redeliver`, owner);
      expect(res.statusCode).toBe(202);
      expect(res.json()).toEqual({ deliveryId });
      const row = await waitFor(async () => {
        const r = await delivery(deliveryId);
        return r.status === 'success' && r.attempts === 2 ? r : undefined;
      });
      expect(row.attemptsLog.map((a) => a.attemptNumber)).toEqual([1, 2]);
      const sent = receiver.requests.filter((r) => r.headers['webhook-id'] === deliveryId);
      expect(sent).toHaveLength(2);
      expect(sent[1]?.body).toBe(sent[0]?.body);
      expect(
        await t.db.prisma.webhookDelivery.count({ where: { endpointId: endpoint.id, id: { not: deliveryId }, eventId: row.eventId } }),
      ).toBe(0);
    });

    it('redelivers a failed delivery once the receiver is back', async () => {
      const flaky = await startReceiver(answer(410));
      try {
        const ep = await createEndpoint(t.app, owner, `${flaky.origin}/comes-back`);
        const { deliveryId } = (await post(`/api/webhooks/${ep.id}/test`, owner)).json();
        expect((await settled(deliveryId)).status).toBe('failed');
        // 410 disabled the endpoint: redelivery is refused until it is enabled again.
        const refused = await post(`/api/webhooks/${ep.id}/deliveries/${deliveryId}/redeliver`, owner);
        expect(refused.statusCode).toBe(409);
        expect(refused.json().error.code).toBe('ENDPOINT_DISABLED');

        flaky.handle(answer(200));
        const enable = await t.app.inject({
          method: 'PATCH',
          url: `/api/webhooks/${ep.id}`,
          headers: owner.auth,
          payload: { isActive: true },
        });
        expect(enable.statusCode).toBe(200);
        expect((await post(`/api/webhooks/${ep.id}/deliveries/${deliveryId}/redeliver`, owner)).statusCode).toBe(202);
        const row = await waitFor(async () => {
          const r = await delivery(deliveryId);
          return r.status === 'success' ? r : undefined;
        });
        expect(row.attempts).toBe(2);
        expect(row.attemptsLog.map((a) => a.responseCode)).toEqual([410, 200]);
        expect(flaky.requests.map((r) => r.headers['webhook-id'])).toEqual([deliveryId, deliveryId]);
      } finally {
        await flaky.close();
      }
    });

    it("is a 404 for another user's endpoint or delivery, a delivery of another endpoint, unknown or malformed ids", async () => {
      const { deliveryId } = (await post(`/api/webhooks/${endpoint.id}/test`, owner)).json();
      const { deliveryId: strangersDelivery } = (await post(`/api/webhooks/${strangersEndpoint.id}/test`, stranger)).json();
      await settled(deliveryId);
      await settled(strangersDelivery);
      const cases: Array<[Session, string, string]> = [
        [stranger, endpoint.id, deliveryId],
        [owner, strangersEndpoint.id, strangersDelivery],
        [owner, endpoint.id, strangersDelivery],
        [owner, sibling.id, deliveryId],
        [owner, endpoint.id, randomUUID()],
        [owner, endpoint.id, 'nope'],
        [owner, 'nope', deliveryId],
      ];
      for (const [who, ep, id] of cases) {
        const res = await post(`/api/webhooks/${ep}/deliveries/${id}/redeliver`, who);
        expect(res.statusCode, `${ep}/${id}`).toBe(404);
        expect(res.json().error.code).toBe('NOT_FOUND');
      }
      expect((await post(`/api/webhooks/${endpoint.id}/deliveries/${deliveryId}/redeliver`)).statusCode).toBe(401);
      await sleep(100);
      expect((await delivery(deliveryId)).attempts).toBe(1);
      expect((await delivery(strangersDelivery)).attempts).toBe(1);
    });

    it('are documented in OpenAPI', async () => {
      const spec = (await t.app.inject({ method: 'GET', url: '/docs/json' })).json();
      const redeliver = spec.paths['/api/webhooks/{id}/deliveries/{deliveryId}/redeliver']?.post;
      const test = spec.paths['/api/webhooks/{id}/test']?.post;
      for (const op of [redeliver, test]) {
        expect(op).toBeDefined();
        expect(op.tags).toEqual(['webhooks']);
        expect(op.summary).toEqual(expect.any(String));
        expect(op.security).toEqual([{ bearerAuth: [] }]);
        expect(Object.keys(op.responses)).toEqual(expect.arrayContaining(['202', '401', '404', '409']));
      }
      expect(spec.paths['/metrics']?.get).toBeDefined();
    });
  });

  describe('GET /metrics', () => {
    it('exposes the webhook series and the default process metrics', async () => {
      const res = await t.app.inject({ method: 'GET', url: '/metrics' });
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-type']).toMatch(/^text\/plain/);
      const text = res.body;
      const value = (series: string) => {
        const line = text.split('\n').find((l) => l.startsWith(`${series} `));
        return line === undefined ? undefined : Number(line.slice(series.length + 1));
      };
      // Earlier tests in this file made successful and gone attempts.
      expect(value('webhook_deliveries_total{outcome="success"}')).toBeGreaterThanOrEqual(4);
      expect(value('webhook_deliveries_total{outcome="gone"}')).toBe(1);
      expect(value('webhook_deliveries_total{outcome="retry"}')).toBe(0);
      expect(value('webhook_deliveries_total{outcome="failed"}')).toBe(0);
      expect(value('webhook_attempt_duration_seconds_count')).toBeGreaterThanOrEqual(5);
      expect(value('webhook_due_backlog')).toBe(0);
      expect(value('webhook_in_flight')).toBe(0);
      expect(text).toContain('# TYPE webhook_attempt_duration_seconds histogram');
      expect(text).toContain('process_cpu_user_seconds_total');
    });
  });
});

describe('an API process with WEBHOOK_WORKER=off', () => {
  it('writes deliveries but never sends them, and reports them as backlog', async () => {
    const t = await buildTestApp({ env: { WEBHOOK_WORKER: 'off', WEBHOOK_SWEEP_INTERVAL_MS: '50', METRICS_BACKLOG_REFRESH_MS: '50' } });
    const receiver = await startReceiver();
    try {
      expect(t.app.webhooks.worker).toBeUndefined();
      const owner = await signUp(t.app, uniqueUsername('apionly'));
      const endpoint = await createEndpoint(t.app, owner, `${receiver.origin}/api-only`);
      for (let i = 0; i < 3; i++) {
        expect((await t.app.inject({ method: 'POST', url: `/api/webhooks/${endpoint.id}/test`, headers: owner.auth })).statusCode).toBe(
          202,
        );
      }
      await sleep(300);
      expect(receiver.requests).toHaveLength(0);
      const rows = await t.db.prisma.webhookDelivery.findMany({ where: { endpointId: endpoint.id } });
      expect(rows.map((r) => [r.status, r.attempts, r.claimToken])).toEqual(Array(3).fill(['pending', 0, null]));
      // The backlog is counted every METRICS_BACKLOG_REFRESH_MS, not at scrape time.
      const text = await waitFor(
        async () => {
          const body = (await t.app.inject({ method: 'GET', url: '/metrics' })).body;
          return body.includes('webhook_due_backlog 3') && body;
        },
        { intervalMs: 200, what: 'the backlog to be counted' },
      );
      expect(text).toContain('webhook_in_flight 0');
      expect(text).toContain('webhook_deliveries_total{outcome="success"} 0');
    } finally {
      await t.close();
      await receiver.close();
    }
  });
});
