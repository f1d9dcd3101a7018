import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestApp } from '../helpers/app.ts';
import { asUser, signUp, uniqueUsername, type Session } from '../helpers/users.ts';
import { buildWebhookTestApp } from '../helpers/webhook-api.ts';

/** `maxPerSecond` on create and update: a whole number from 1 to 1000, or null for no limit. */
describe('webhook endpoint maxPerSecond', () => {
  let t: TestApp;
  let alice: Session;
  let urlCounter = 0;
  const freshUrl = () => `https://hooks.example.com/rate/${++urlCounter}`;

  const create = (payload: Record<string, unknown>) =>
    asUser(t.app, alice, { method: 'POST', url: '/api/webhooks', payload: { url: freshUrl(), events: ['card.viewed'], ...payload } });
  const patch = (id: string, payload: Record<string, unknown>) =>
    asUser(t.app, alice, { method: 'PATCH', url: `/api/webhooks/${id}`, payload });
  const get = (url: string) => asUser(t.app, alice, { method: 'GET', url });
  const stored = async (id: string) => (await t.db.prisma.webhookEndpoint.findUniqueOrThrow({ where: { id } })).maxPerSecond;

  beforeAll(async () => {
    t = await buildWebhookTestApp({ env: { WEBHOOK_MAX_ENDPOINTS_PER_USER: '50' } });
    alice = await signUp(t.app, uniqueUsername('alice'));
  });
  afterAll(async () => t.close());

  it('takes 1 to 1000 or null (the default), and shows it in the answer, the detail and the list', async () => {
    for (const maxPerSecond of [1, 1000, null, undefined]) {
      const res = await create(maxPerSecond === undefined ? {} : { maxPerSecond });
      expect(res.statusCode).toBe(201);
      const { id } = res.json();
      const expected = maxPerSecond ?? null;
      expect(res.json().maxPerSecond).toBe(expected);
      expect((await get(`/api/webhooks/${id}`)).json().maxPerSecond).toBe(expected);
      expect(
        ((await get('/api/webhooks')).json() as Array<{ id: string; maxPerSecond: unknown }>).find((e) => e.id === id)?.maxPerSecond,
      ).toBe(expected);
      expect(await stored(id)).toBe(expected);
    }
  });

  it.each([0, -1, 1001, 2.5, '5', true])(
    'refuses %j with 400 VALIDATION_ERROR at the field, on create and on update',
    async (maxPerSecond) => {
      const refused = await create({ maxPerSecond });
      expect(refused.statusCode).toBe(400);
      expect(refused.json().error).toMatchObject({ code: 'VALIDATION_ERROR', details: [{ field: 'body.maxPerSecond' }] });

      const { id } = (await create({ maxPerSecond: 7 })).json();
      const unchanged = await patch(id, { maxPerSecond });
      expect(unchanged.statusCode).toBe(400);
      expect(unchanged.json().error).toMatchObject({ code: 'VALIDATION_ERROR', details: [{ field: 'body.maxPerSecond' }] });
      expect(await stored(id)).toBe(7);
    },
  );

  it('is changed and removed by PATCH', async () => {
    const { id } = (await create({})).json();
    expect((await patch(id, { maxPerSecond: 25 })).json().maxPerSecond).toBe(25);
    expect(await stored(id)).toBe(25);
    expect((await patch(id, { maxPerSecond: null })).json().maxPerSecond).toBeNull();
    expect(await stored(id)).toBeNull();
  });
});
