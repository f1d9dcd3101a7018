import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestApp } from '../helpers/app.ts';
import { createCard } from '../helpers/cards.ts';
import { insertDelivery } from '../helpers/deliveries.ts';
import { asUser, signUp, uniqueUsername, type Session } from '../helpers/users.ts';
import { buildWebhookTestApp } from '../helpers/webhook-api.ts';
import { ownCardsStatement } from '../../src/webhooks/endpoints/own-cards.ts';

/** `cardIds` on create and update: only the user's own cards, refused alike whether another user's or nobody's. */
describe('webhook endpoint cardIds', () => {
  let t: TestApp;
  let alice: Session;
  let bob: Session;
  let aliceSales: string;
  let alicePersonal: string;
  let bobCard: string;
  let urlCounter = 0;
  const freshUrl = () => `https://hooks.example.com/cards/${++urlCounter}`;

  const create = (user: Session, payload: Record<string, unknown>) =>
    asUser(t.app, user, { method: 'POST', url: '/api/webhooks', payload: { url: freshUrl(), events: ['card.viewed'], ...payload } });
  const patch = (user: Session, id: string, payload: Record<string, unknown>) =>
    asUser(t.app, user, { method: 'PATCH', url: `/api/webhooks/${id}`, payload });
  const get = (user: Session, url: string) => asUser(t.app, user, { method: 'GET', url });
  const endpointCount = () => t.db.prisma.webhookEndpoint.count({ where: { userId: alice.id } });

  beforeAll(async () => {
    t = await buildWebhookTestApp({ env: { WEBHOOK_MAX_ENDPOINTS_PER_USER: '50' } });
    alice = await signUp(t.app, uniqueUsername('alice'));
    bob = await signUp(t.app, uniqueUsername('bob'));
    aliceSales = await createCard(t.app, alice, 'Sales');
    alicePersonal = await createCard(t.app, alice, 'Personal');
    bobCard = await createCard(t.app, bob, 'Bob');
  });
  afterAll(async () => t.close());

  it('defaults to none (every card), and shows the cards listed in the answer, the detail and the list', async () => {
    const plain = await create(alice, {});
    expect(plain.statusCode).toBe(201);
    expect(plain.json().cardIds).toEqual([]);

    const res = await create(alice, { cardIds: [aliceSales.toUpperCase(), alicePersonal] });
    expect(res.statusCode).toBe(201);
    const { id } = res.json();
    expect(res.json().cardIds).toEqual([aliceSales, alicePersonal]);
    expect((await get(alice, `/api/webhooks/${id}`)).json().cardIds).toEqual([aliceSales, alicePersonal]);
    const listed = (await get(alice, '/api/webhooks')).json() as Array<{ id: string; cardIds: string[] }>;
    expect(listed.find((e) => e.id === id)?.cardIds).toEqual([aliceSales, alicePersonal]);
    expect(listed.find((e) => e.id === plain.json().id)?.cardIds).toEqual([]);
  });

  it("refuses another user's card exactly as a card that does not exist: 400 UNKNOWN_CARD naming the field", async () => {
    const before = await endpointCount();
    const foreign = await create(alice, { cardIds: [aliceSales, bobCard] });
    const missing = await create(alice, { cardIds: [aliceSales, randomUUID()] });
    for (const res of [foreign, missing]) {
      expect(res.statusCode).toBe(400);
      expect(res.json()).toEqual({
        error: {
          code: 'UNKNOWN_CARD',
          message: 'body.cardIds.1: is not one of your cards',
          details: [{ field: 'body.cardIds.1', message: 'is not one of your cards' }],
        },
      });
    }
    // Nothing in the answer tells the two apart, and nothing was stored.
    expect(foreign.body).toBe(missing.body);
    expect(await endpointCount()).toBe(before);
  });

  it('refuses them on update the same way and keeps the list it had; an empty list means every card again', async () => {
    const { id } = (await create(alice, { cardIds: [aliceSales] })).json();
    const foreign = await patch(alice, id, { cardIds: [bobCard] });
    const missing = await patch(alice, id, { cardIds: [randomUUID()] });
    for (const res of [foreign, missing]) {
      expect(res.statusCode).toBe(400);
      expect(res.json().error).toMatchObject({ code: 'UNKNOWN_CARD', details: [{ field: 'body.cardIds.0' }] });
    }
    expect(foreign.body).toBe(missing.body);
    expect((await get(alice, `/api/webhooks/${id}`)).json().cardIds).toEqual([aliceSales]);

    const changed = await patch(alice, id, { cardIds: [alicePersonal] });
    expect(changed.statusCode).toBe(200);
    expect(changed.json().cardIds).toEqual([alicePersonal]);
    expect((await patch(alice, id, { cardIds: [] })).json().cardIds).toEqual([]);
  });

  it('refuses what is not a list of distinct card ids with 400 VALIDATION_ERROR at the field', async () => {
    const cases: Array<[unknown, string]> = [
      [['not-a-uuid'], 'body.cardIds.0'],
      [[aliceSales, aliceSales], 'body.cardIds'],
      [[aliceSales, aliceSales.toUpperCase()], 'body.cardIds'],
      [aliceSales, 'body.cardIds'],
      [Array.from({ length: 101 }, () => randomUUID()), 'body.cardIds'],
    ];
    for (const [cardIds, field] of cases) {
      const res = await create(alice, { cardIds });
      expect(res.statusCode, JSON.stringify(cardIds)).toBe(400);
      expect(res.json().error).toMatchObject({ code: 'VALIDATION_ERROR', details: [{ field }] });
    }
  });

  it('a deleted card leaves every list; an endpoint whose list empties is disabled, its pending deliveries cancelled', async () => {
    const doomed = await createCard(t.app, alice, 'Doomed');
    const both = (await create(alice, { cardIds: [doomed, aliceSales] })).json().id as string;
    const only = (await create(alice, { cardIds: [doomed] })).json().id as string;
    const all = (await create(alice, {})).json().id as string;
    const pending = await insertDelivery(t.db, { endpointId: only, eventType: 'card.viewed', payload: { x: 1 }, status: 'pending' });

    await t.db.prisma.card.delete({ where: { id: doomed } });

    const detail = async (id: string) => (await get(alice, `/api/webhooks/${id}`)).json();
    expect(await detail(both)).toMatchObject({ cardIds: [aliceSales], isActive: true });
    // Never an empty list, which would widen it to every card.
    expect(await detail(only)).toMatchObject({
      cardIds: [],
      isActive: false,
      disabledReason: 'every card it was limited to was deleted',
    });
    expect(await detail(all)).toMatchObject({ cardIds: [], isActive: true });
    const delivery = await t.db.prisma.webhookDelivery.findUniqueOrThrow({ where: { id: pending.id } });
    expect(delivery).toMatchObject({ status: 'cancelled', errorMessage: 'endpoint disabled: every card it was limited to was deleted' });
  });

  it('deleting a user whose endpoints list their cards deletes both', async () => {
    const carol = await signUp(t.app, uniqueUsername('carol'));
    const card = await createCard(t.app, carol, 'Carol');
    const { id } = (await create(carol, { cardIds: [card] })).json();
    await t.db.prisma.user.delete({ where: { id: carol.id } });
    expect(await t.db.prisma.webhookEndpoint.count({ where: { id } })).toBe(0);
    expect(await t.db.prisma.card.count({ where: { id: card } })).toBe(0);
  });
});

describe('the cards option of the webhooks module', () => {
  it('reads a host’s cards wherever it keeps them, and refuses names that are not plain identifiers at setup', () => {
    expect(ownCardsStatement({ table: 'member_cards', ownerColumn: 'owner' })).toContain('FROM "member_cards" WHERE "owner" = $1::uuid');
    for (const bad of ['cards; DROP TABLE users', 'Cards', 'public.cards', '']) {
      expect(() => ownCardsStatement({ table: bad, ownerColumn: 'owner_id' })).toThrow(/plain lower-case SQL identifier/);
      expect(() => ownCardsStatement({ table: 'cards', ownerColumn: bad })).toThrow(/plain lower-case SQL identifier/);
    }
  });
});
