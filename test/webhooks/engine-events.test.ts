import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp, type TestApp } from '../helpers/app.ts';
import { createCard } from '../helpers/cards.ts';
import { startReceiver, type ReceivedRequest, type Receiver } from '../helpers/receiver.ts';
import { signUp, uniqueUsername, type Session } from '../helpers/users.ts';
import { sleep, waitFor } from '../helpers/wait.ts';
import { createEndpoint, deliveriesOf } from '../helpers/webhook-api.ts';

const VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/** x-devcard-signature computed independently of the service's signing code. */
function devcardSignature(secret: string, body: string): string {
  const key = Buffer.from(secret.slice('whsec_'.length), 'base64');
  return `sha256=${createHmac('sha256', key).update(body).digest('hex')}`;
}

function headerRecord(request: ReceivedRequest): Record<string, string> {
  return Object.fromEntries(Object.entries(request.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(', ') : (v ?? '')]));
}

function verifiesWith(secret: string, request: ReceivedRequest): boolean {
  try {
    new Webhook(secret).verify(request.body, headerRecord(request));
    return true;
  } catch {
    return false;
  }
}

describe('delivery engine: events on the wire', () => {
  let t: TestApp;
  let receiver: Receiver;
  let owner: Session;
  let visitor: Session;
  let cardId: string;
  let endpoint: { id: string; secret: string };

  beforeAll(async () => {
    t = await buildTestApp();
    receiver = await startReceiver();
    owner = await signUp(t.app, uniqueUsername('owner'));
    visitor = await signUp(t.app, uniqueUsername('visitor'));
    cardId = await createCard(t.app, owner, 'Main card');
    endpoint = await createEndpoint(t.app, owner, `${receiver.origin}/all`);
  });
  afterAll(async () => {
    await t?.close();
    await receiver?.close();
  });

  /** Performs `action`, then returns the one new delivery row of `endpointId` and the request the receiver got for it. */
  async function expectOneDelivery(endpointId: string, path: string, action: () => Promise<unknown>) {
    const before = new Set((await deliveriesOf(t, endpointId)).map((d) => d.id));
    await action();
    // Rows are durable before the response: no waiting needed to see them.
    const added = (await deliveriesOf(t, endpointId)).filter((d) => !before.has(d.id));
    expect(added).toHaveLength(1);
    const delivery = added[0]!;
    const request = await waitFor(() => receiver.at(path).find((r) => r.headers['webhook-id'] === delivery.id), {
      what: `delivery ${delivery.id}`,
    });
    return { delivery, request };
  }

  function expectContractHeaders(request: ReceivedRequest, deliveryId: string, type: string, secret: string) {
    expect(request.method).toBe('POST');
    expect(request.headers['content-type']).toBe('application/json');
    expect(request.headers['user-agent']).toBe(`DevCard-Webhooks/${VERSION}`);
    expect(request.headers['x-devcard-event']).toBe(type);
    expect(request.headers['x-devcard-delivery']).toBe(deliveryId);
    expect(request.headers['webhook-id']).toBe(deliveryId);
    const timestamp = Number(request.headers['webhook-timestamp']);
    expect(Number.isInteger(timestamp)).toBe(true);
    expect(Math.abs(timestamp - Date.now() / 1000)).toBeLessThan(10);
    expect(request.headers['webhook-signature']).toMatch(/^v1,[A-Za-z0-9+/]+=*$/);
    expect(verifiesWith(secret, request)).toBe(true);
    expect(request.headers['x-devcard-signature']).toBe(devcardSignature(secret, request.body));
  }

  /** The exact bytes the contract prescribes, keys in order, built by hand. */
  function cardViewedBody(eventId: string, timestamp: string, card: string | null, viewer: Session | null, source: string) {
    const viewerJson = viewer ? `{"id":"${viewer.id}","username":"${viewer.username}"}` : 'null';
    const cardJson = card === null ? 'null' : `"${card}"`;
    return (
      `{"id":"${eventId}","type":"card.viewed","timestamp":"${timestamp}",` +
      `"data":{"userId":"${owner.id}","cardId":${cardJson},"viewer":${viewerJson},"source":"${source}"}}`
    );
  }

  function storedTimestamp(payload: unknown): string {
    const timestamp = (payload as { timestamp: string }).timestamp;
    expect(new Date(timestamp).toISOString()).toBe(timestamp);
    expect(Math.abs(Date.parse(timestamp) - Date.now())).toBeLessThan(10_000);
    return timestamp;
  }

  it('fires card.viewed for a profile view with the exact body and headers of the contract', async () => {
    const { delivery, request } = await expectOneDelivery(endpoint.id, '/all', async () => {
      const res = await t.app.inject({ method: 'GET', url: `/api/u/${owner.username}?source=qr`, headers: visitor.auth });
      expect(res.statusCode).toBe(200);
    });
    expect(request.body).toBe(cardViewedBody(delivery.eventId, storedTimestamp(delivery.payload), null, visitor, 'qr'));
    expectContractHeaders(request, delivery.id, 'card.viewed', endpoint.secret);
  });

  it('fires card.viewed for an anonymous view by card id (source defaults to link)', async () => {
    const { delivery, request } = await expectOneDelivery(endpoint.id, '/all', async () => {
      expect((await t.app.inject({ method: 'GET', url: `/api/u/card/${cardId}` })).statusCode).toBe(200);
    });
    expect(request.body).toBe(cardViewedBody(delivery.eventId, storedTimestamp(delivery.payload), cardId, null, 'link'));
    expectContractHeaders(request, delivery.id, 'card.viewed', endpoint.secret);
  });

  it("fires card.viewed for a view of one of a user's cards", async () => {
    const { delivery, request } = await expectOneDelivery(endpoint.id, '/all', async () => {
      const url = `/api/u/${owner.username}/card/${cardId}?source=nfc`;
      expect((await t.app.inject({ method: 'GET', url, headers: visitor.auth })).statusCode).toBe(200);
    });
    expect(request.body).toBe(cardViewedBody(delivery.eventId, storedTimestamp(delivery.payload), cardId, visitor, 'nfc'));
    expectContractHeaders(request, delivery.id, 'card.viewed', endpoint.secret);
    await waitFor(async () => (await t.db.prisma.webhookDelivery.findUnique({ where: { id: delivery.id } }))?.status === 'success');
  });

  it('fires nothing when owners view their own pages', async () => {
    const before = (await deliveriesOf(t, endpoint.id)).length;
    const received = receiver.requests.length;
    for (const url of [`/api/u/${owner.username}`, `/api/u/card/${cardId}`, `/api/u/${owner.username}/card/${cardId}`]) {
      expect((await t.app.inject({ method: 'GET', url, headers: owner.auth })).statusCode).toBe(200);
    }
    await sleep(200);
    expect(await deliveriesOf(t, endpoint.id)).toHaveLength(before);
    expect(receiver.requests.length).toBe(received);
  });

  it('fires contact.saved on the first save only', async () => {
    const { delivery, request } = await expectOneDelivery(endpoint.id, '/all', async () => {
      expect((await t.app.inject({ method: 'POST', url: `/api/cards/${cardId}/save`, headers: visitor.auth })).statusCode).toBe(201);
    });
    const timestamp = storedTimestamp(delivery.payload);
    expect(request.body).toBe(
      `{"id":"${delivery.eventId}","type":"contact.saved","timestamp":"${timestamp}",` +
        `"data":{"userId":"${owner.id}","cardId":"${cardId}","savedBy":{"id":"${visitor.id}","username":"${visitor.username}"}}}`,
    );
    expectContractHeaders(request, delivery.id, 'contact.saved', endpoint.secret);

    const before = (await deliveriesOf(t, endpoint.id)).length;
    const again = await t.app.inject({ method: 'POST', url: `/api/cards/${cardId}/save`, headers: visitor.auth });
    expect(again.statusCode).toBe(200);
    expect(await deliveriesOf(t, endpoint.id)).toHaveLength(before);
  });

  it('sends nothing to endpoints not subscribed to the event, or inactive', async () => {
    const other = await signUp(t.app, uniqueUsername('other'));
    const otherCard = await createCard(t.app, other);
    const savesOnly = await createEndpoint(t.app, other, `${receiver.origin}/saves-only`, ['contact.saved']);
    const inactive = await createEndpoint(t.app, other, `${receiver.origin}/inactive`, ['card.viewed', 'contact.saved']);
    const patch = await t.app.inject({
      method: 'PATCH',
      url: `/api/webhooks/${inactive.id}`,
      headers: other.auth,
      payload: { isActive: false },
    });
    expect(patch.statusCode).toBe(200);
    const views = await createEndpoint(t.app, other, `${receiver.origin}/views-only`, ['card.viewed']);

    expect((await t.app.inject({ method: 'GET', url: `/api/u/card/${otherCard}`, headers: visitor.auth })).statusCode).toBe(200);
    expect(await deliveriesOf(t, savesOnly.id)).toHaveLength(0);
    expect(await deliveriesOf(t, inactive.id)).toHaveLength(0);
    expect(await deliveriesOf(t, views.id)).toHaveLength(1);
    await waitFor(() => receiver.at('/views-only').length === 1);

    expect((await t.app.inject({ method: 'POST', url: `/api/cards/${otherCard}/save`, headers: visitor.auth })).statusCode).toBe(201);
    expect(await deliveriesOf(t, views.id)).toHaveLength(1);
    expect(await deliveriesOf(t, inactive.id)).toHaveLength(0);
    await waitFor(() => receiver.at('/saves-only').length === 1);
    await sleep(100);
    expect(receiver.at('/inactive')).toHaveLength(0);
    expect(receiver.at('/views-only')).toHaveLength(1);
    expect(receiver.at('/saves-only')[0]?.headers['x-devcard-event']).toBe('contact.saved');
  });

  it('signs with both secrets during a rotation grace period, and with the new one only after it', async () => {
    const rotated = await createEndpoint(t.app, owner, `${receiver.origin}/rotated`, ['card.viewed']);
    const view = () => t.app.inject({ method: 'GET', url: `/api/u/card/${cardId}`, headers: visitor.auth });

    const rotate = await t.app.inject({
      method: 'PATCH',
      url: `/api/webhooks/${rotated.id}/rotate-secret`,
      headers: owner.auth,
      payload: { gracePeriodSeconds: 3600 },
    });
    expect(rotate.statusCode).toBe(200);
    const newSecret: string = rotate.json().secret;
    expect(newSecret).not.toBe(rotated.secret);

    const { request: during } = await expectOneDelivery(rotated.id, '/rotated', view);
    expect(verifiesWith(newSecret, during)).toBe(true);
    expect(verifiesWith(rotated.secret, during)).toBe(true);
    const devcard = String(during.headers['x-devcard-signature']);
    expect(devcard).toBe(`${devcardSignature(newSecret, during.body)},${devcardSignature(rotated.secret, during.body)}`);
    expect(String(during.headers['webhook-signature']).split(' ')).toHaveLength(2);

    // The grace period ends.
    await t.db.prisma.webhookEndpoint.update({ where: { id: rotated.id }, data: { previousSecretExpiresAt: new Date(Date.now() - 1000) } });
    const { request: after } = await expectOneDelivery(rotated.id, '/rotated', view);
    expect(verifiesWith(newSecret, after)).toBe(true);
    expect(verifiesWith(rotated.secret, after)).toBe(false);
    expect(after.headers['x-devcard-signature']).toBe(devcardSignature(newSecret, after.body));
  });

  it('signs with the new secret at once after a rotation without grace period', async () => {
    const rotated = await createEndpoint(t.app, owner, `${receiver.origin}/revoked`, ['card.viewed']);
    // First delivery: decrypts and caches the original key.
    await expectOneDelivery(rotated.id, '/revoked', () => t.app.inject({ method: 'GET', url: `/api/u/card/${cardId}` }));
    const rotate = await t.app.inject({
      method: 'PATCH',
      url: `/api/webhooks/${rotated.id}/rotate-secret`,
      headers: owner.auth,
      payload: { gracePeriodSeconds: 0 },
    });
    const newSecret: string = rotate.json().secret;
    const { request } = await expectOneDelivery(rotated.id, '/revoked', () =>
      t.app.inject({ method: 'GET', url: `/api/u/card/${cardId}` }),
    );
    expect(verifiesWith(newSecret, request)).toBe(true);
    expect(verifiesWith(rotated.secret, request)).toBe(false);
  });
});
