import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DELIVERY_DETAIL_ATTEMPTS } from '../../src/webhooks/endpoints/schemas.ts';
import { buildTestApp, type TestApp } from '../helpers/app.ts';
import { setDelivery } from '../helpers/deliveries.ts';
import { startReceiver, type Receiver } from '../helpers/receiver.ts';
import { signUp, uniqueUsername, type Session } from '../helpers/users.ts';
import { waitFor } from '../helpers/wait.ts';
import { createEndpoint } from '../helpers/webhook-api.ts';

/** Contract §4: attempts per delivery are capped, manual redeliveries included, and a delivery's attempts are paginated. */
describe('bounded work per delivery', () => {
  const MAX_ATTEMPTS = 3;
  let t: TestApp;
  let receiver: Receiver;
  let owner: Session;
  let stranger: Session;
  let endpointId: string;

  beforeAll(async () => {
    t = await buildTestApp({ env: { WEBHOOK_RETRY_SCHEDULE: '50ms', WEBHOOK_MAX_ATTEMPTS_PER_DELIVERY: String(MAX_ATTEMPTS) } });
    receiver = await startReceiver();
    owner = await signUp(t.app, uniqueUsername('owner'));
    stranger = await signUp(t.app, uniqueUsername('stranger'));
    endpointId = (await createEndpoint(t.app, owner, `${receiver.origin}/hook`)).id;
  });
  afterAll(async () => {
    await t?.close();
    await receiver?.close();
  });

  const inject = (method: 'GET' | 'POST', url: string, who: Session = owner) => t.app.inject({ method, url, headers: who.auth });
  const attemptsOf = (id: string) => t.db.prisma.webhookDelivery.findUniqueOrThrow({ where: { id } }).then((row) => row.attempts);
  const settledAt = (id: string, attempts: number) =>
    waitFor(async () => {
      const row = await t.db.prisma.webhookDelivery.findUniqueOrThrow({ where: { id } });
      return row.status !== 'pending' && row.attempts === attempts ? row : undefined;
    });

  it('redeliver answers 409 ATTEMPT_LIMIT_REACHED once a delivery has had its attempts, and sends nothing more', async () => {
    const { deliveryId } = (await inject('POST', `/api/webhooks/${endpointId}/test`)).json();
    await settledAt(deliveryId, 1);
    for (let attempts = 2; attempts <= MAX_ATTEMPTS; attempts++) {
      expect((await inject('POST', `/api/webhooks/${endpointId}/deliveries/${deliveryId}/redeliver`)).statusCode).toBe(202);
      await settledAt(deliveryId, attempts);
    }
    // Concurrent redeliveries past the cap are all refused.
    const refused = await Promise.all(
      Array.from({ length: 5 }, () => inject('POST', `/api/webhooks/${endpointId}/deliveries/${deliveryId}/redeliver`)),
    );
    for (const res of refused) {
      expect(res.statusCode).toBe(409);
      expect(res.json().error.code).toBe('ATTEMPT_LIMIT_REACHED');
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(await attemptsOf(deliveryId)).toBe(MAX_ATTEMPTS);
    expect(receiver.requests.filter((r) => r.headers['webhook-id'] === deliveryId)).toHaveLength(MAX_ATTEMPTS);
  });

  it('the detail embeds the newest attempts; GET …/attempts pages through all of them', async () => {
    const { deliveryId } = (await inject('POST', `/api/webhooks/${endpointId}/test`)).json();
    await settledAt(deliveryId, 1);
    // A long log written directly: the cap bounds new attempts, not what a log may already hold.
    const total = DELIVERY_DETAIL_ATTEMPTS + 12;
    await setDelivery(t.db, deliveryId, { attempts: total });
    await t.db.sql.query(
      `INSERT INTO webhook_earlier_attempts (delivery_id, attempt_number, started_at, duration_ms, response_code)
       SELECT $1::uuid, n, now() + n * interval '1 second', 5, 500 FROM generate_series(2, $2::int) AS n`,
      [deliveryId, total],
    );

    const detail = (await inject('GET', `/api/webhooks/${endpointId}/deliveries/${deliveryId}`)).json();
    expect(detail.attemptCount).toBe(total);
    expect(detail.attempts.map((a: { attemptNumber: number }) => a.attemptNumber)).toEqual(
      Array.from({ length: DELIVERY_DETAIL_ATTEMPTS }, (_, i) => total - DELIVERY_DETAIL_ATTEMPTS + 1 + i),
    );

    const seen: number[] = [];
    for (let page = 1; ; page++) {
      const res = await inject('GET', `/api/webhooks/${endpointId}/deliveries/${deliveryId}/attempts?page=${page}&limit=10`);
      expect(res.statusCode).toBe(200);
      const body = res.json();
      expect(body.pagination).toEqual({ page, limit: 10, total, totalPages: Math.ceil(total / 10) });
      if (body.data.length === 0) break;
      seen.push(...body.data.map((a: { attemptNumber: number }) => a.attemptNumber));
    }
    expect(seen).toEqual(Array.from({ length: total }, (_, i) => i + 1));
    expect((await inject('GET', `/api/webhooks/${endpointId}/deliveries/${deliveryId}/attempts`)).json().data[0]).toMatchObject({
      attemptNumber: 1,
      responseCode: 200,
      hints: [],
    });
  });

  it('…/attempts is a 404 for another user, an unknown or malformed id, and a 400 for a bad page', async () => {
    const { deliveryId } = (await inject('POST', `/api/webhooks/${endpointId}/test`)).json();
    for (const [who, ep, id] of [
      [stranger, endpointId, deliveryId],
      [owner, endpointId, randomUUID()],
      [owner, endpointId, 'nope'],
      [owner, 'nope', deliveryId],
    ] as const) {
      const res = await inject('GET', `/api/webhooks/${ep}/deliveries/${id}/attempts`, who);
      expect(res.statusCode).toBe(404);
      expect(res.json().error.code).toBe('NOT_FOUND');
    }
    for (const query of ['page=0', 'limit=101', 'limit=x']) {
      const res = await inject('GET', `/api/webhooks/${endpointId}/deliveries/${deliveryId}/attempts?${query}`);
      expect(res.statusCode, query).toBe(400);
      expect(res.json().error.code).toBe('VALIDATION_ERROR');
    }
  });
});
