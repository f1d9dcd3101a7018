import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp, type TestApp } from '../helpers/app.ts';
import { createCard } from '../helpers/cards.ts';
import { startReceiver, type Receiver } from '../helpers/receiver.ts';
import { asUser, signUp, uniqueUsername, type Session } from '../helpers/users.ts';
import { sleep, waitFor } from '../helpers/wait.ts';

interface Received {
  type: string;
  cardId: string | null;
}

/**
 * Per-card subscriptions end to end: real views and saves through the API, the in-process worker,
 * a real receiver on 127.0.0.1. One user with a sales card and a personal card sends each to a
 * different endpoint, and has a third endpoint that lists no cards.
 */
describe('delivery engine: endpoints that take some cards only', () => {
  let t: TestApp;
  let receiver: Receiver;
  let owner: Session;
  let visitor: Session;
  let sales: string;
  let personal: string;
  const endpoints: Record<'sales' | 'personal' | 'all', string> = { sales: '', personal: '', all: '' };

  const receivedAt = (path: string): Received[] =>
    receiver.at(path).map((request) => {
      const body = JSON.parse(request.body) as { type: string; data: { cardId: string | null } };
      return { type: body.type, cardId: body.data.cardId };
    });
  const sorted = (items: Received[]) => [...items].sort((a, b) => `${a.type}${a.cardId}`.localeCompare(`${b.type}${b.cardId}`));

  async function createEndpoint(path: string, cardIds?: string[]): Promise<string> {
    const res = await asUser(t.app, owner, {
      method: 'POST',
      url: '/api/webhooks',
      payload: { url: `${receiver.origin}${path}`, events: ['card.viewed', 'contact.saved'], ...(cardIds && { cardIds }) },
    });
    expect(res.statusCode).toBe(201);
    return res.json().id;
  }

  async function request(method: 'GET' | 'POST', url: string): Promise<void> {
    const res = await asUser(t.app, visitor, { method, url });
    expect(res.statusCode, `${method} ${url}`).toBeLessThan(300);
  }

  beforeAll(async () => {
    receiver = await startReceiver();
    t = await buildTestApp();
    owner = await signUp(t.app, uniqueUsername('twocards'));
    visitor = await signUp(t.app, uniqueUsername('visitor'));
    sales = await createCard(t.app, owner, 'Sales');
    personal = await createCard(t.app, owner, 'Personal');
    endpoints.sales = await createEndpoint('/crm', [sales]);
    endpoints.personal = await createEndpoint('/personal', [personal]);
    endpoints.all = await createEndpoint('/all');
  });
  afterAll(async () => {
    await t?.close();
    await receiver?.close();
  });

  it("sends each card's views and saves only to the endpoints that list it, and the profile view only to the one that lists none", async () => {
    await request('GET', `/api/u/card/${sales}`);
    await request('GET', `/api/u/${owner.username}/card/${personal}?source=qr`);
    await request('GET', `/api/u/${owner.username}`);
    await request('POST', `/api/cards/${sales}/save`);
    await request('POST', `/api/cards/${personal}/save`);

    await waitFor(() => receiver.at('/all').length === 5, { what: 'the five events at the endpoint that lists no cards' });
    // Anything misrouted would be on its way by now: the worker sends as soon as the rows exist.
    await sleep(500);
    expect(sorted(receivedAt('/crm'))).toEqual([
      { type: 'card.viewed', cardId: sales },
      { type: 'contact.saved', cardId: sales },
    ]);
    expect(sorted(receivedAt('/personal'))).toEqual([
      { type: 'card.viewed', cardId: personal },
      { type: 'contact.saved', cardId: personal },
    ]);
    expect(sorted(receivedAt('/all'))).toEqual(
      sorted([
        { type: 'card.viewed', cardId: sales },
        { type: 'card.viewed', cardId: personal },
        { type: 'card.viewed', cardId: null },
        { type: 'contact.saved', cardId: sales },
        { type: 'contact.saved', cardId: personal },
      ]),
    );
    // Nothing was written for an endpoint the event does not reach.
    expect(await t.db.prisma.webhookDelivery.count({ where: { endpointId: endpoints.sales } })).toBe(2);
    expect(await t.db.prisma.webhookDelivery.count({ where: { endpointId: endpoints.personal } })).toBe(2);
  });

  it('a changed list applies to the next events', async () => {
    const res = await asUser(t.app, owner, { method: 'PATCH', url: `/api/webhooks/${endpoints.personal}`, payload: { cardIds: [sales] } });
    expect(res.statusCode).toBe(200);
    const before = { crm: receiver.at('/crm').length, personal: receiver.at('/personal').length, all: receiver.at('/all').length };

    await request('GET', `/api/u/card/${sales}`);
    await request('GET', `/api/u/card/${personal}`);

    await waitFor(() => receiver.at('/all').length === before.all + 2, { what: 'both views at the endpoint that lists no cards' });
    await sleep(500);
    expect(receivedAt('/personal').slice(before.personal)).toEqual([{ type: 'card.viewed', cardId: sales }]);
    expect(receivedAt('/crm').slice(before.crm)).toEqual([{ type: 'card.viewed', cardId: sales }]);
  });
});
