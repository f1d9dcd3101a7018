import { spawn, type ChildProcess } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { Webhook } from 'standardwebhooks';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { CoalescedCardViewedData } from '../../src/webhooks/events.ts';
import { MAX_COALESCED_VIEWERS } from '../../src/webhooks/events.ts';
import { buildTestApp, TEST_ENV, type TestApp } from '../helpers/app.ts';
import { createCard } from '../helpers/cards.ts';
import { makeDueNow } from '../helpers/deliveries.ts';
import { startReceiver, type ReceivedRequest, type Receiver } from '../helpers/receiver.ts';
import { createTestStore, type TestStore } from '../helpers/store.ts';
import { signUp, uniqueUsername, type Session } from '../helpers/users.ts';
import { waitFor } from '../helpers/wait.ts';
import { deliveriesOf } from '../helpers/webhook-api.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
// The sweep is ten minutes away: a coalesced delivery arrives on time only if the worker set
// its alarm for the end of the window.
const ENV = { WEBHOOK_SWEEP_INTERVAL_MS: '600000' };

function headerRecord(request: ReceivedRequest): Record<string, string> {
  return Object.fromEntries(Object.entries(request.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(', ') : (v ?? '')]));
}

/** Both signatures, checked by a third-party library and by hand. */
function expectSigned(request: ReceivedRequest, secret: string): void {
  expect(() => new Webhook(secret).verify(request.body, headerRecord(request))).not.toThrow();
  const key = Buffer.from(secret.slice('whsec_'.length), 'base64');
  expect(request.headers['x-devcard-signature']).toBe(`sha256=${createHmac('sha256', key).update(request.body).digest('hex')}`);
}

const ref = (user: { id: string; username: string } | null) => (user ? `{"id":"${user.id}","username":"${user.username}"}` : 'null');

interface StoredView {
  id: string;
  timestamp: string;
  data: Partial<CoalescedCardViewedData> & {
    userId: string;
    cardId: string | null;
    source: string;
    viewer: { id: string; username: string } | null;
  };
}

/** The bytes a receiver must get for a stored card.viewed row, built by hand in the documented order. */
function expectedBody(eventId: string, stored: StoredView, viewers?: Array<{ id: string; username: string }>): string {
  const d = stored.data;
  const contract = `"userId":"${d.userId}","cardId":${d.cardId === null ? 'null' : `"${d.cardId}"`},"viewer":${ref(d.viewer)},"source":"${d.source}"`;
  const coalesced =
    viewers === undefined
      ? ''
      : `,"count":${d.count},"firstViewedAt":"${d.firstViewedAt}","lastViewedAt":"${d.lastViewedAt}","viewers":[${viewers.map(ref).join(',')}]`;
  return `{"id":"${eventId}","type":"card.viewed","timestamp":"${stored.timestamp}","data":{${contract}${coalesced}}}`;
}

async function createEndpointWith(t: TestApp, owner: Session, url: string, coalesceSeconds: number) {
  const res = await t.app.inject({
    method: 'POST',
    url: '/api/webhooks',
    headers: owner.auth,
    payload: { url, events: ['card.viewed', 'contact.saved'], coalesceSeconds },
  });
  expect(res.statusCode).toBe(201);
  return res.json() as { id: string; secret: string; coalesceSeconds: number };
}

async function view(t: TestApp, url: string, viewer?: Session) {
  const res = await t.app.inject({ method: 'GET', url, headers: viewer?.auth });
  expect(res.statusCode).toBe(200);
}

describe('delivery engine: coalesced card.viewed', () => {
  let t: TestApp;
  let receiver: Receiver;
  let owner: Session;
  let ada: Session;
  let grace: Session;
  let card: string;
  let otherCard: string;
  let coalesced: { id: string; secret: string };
  let plain: { id: string; secret: string };

  beforeAll(async () => {
    t = await buildTestApp({ env: ENV });
    receiver = await startReceiver();
    owner = await signUp(t.app, uniqueUsername('viral'));
    ada = await signUp(t.app, uniqueUsername('ada'));
    grace = await signUp(t.app, uniqueUsername('grace'));
    card = await createCard(t.app, owner, 'Viral card');
    otherCard = await createCard(t.app, owner, 'Other card');
    coalesced = await createEndpointWith(t, owner, `${receiver.origin}/coalesced`, 2);
    plain = await createEndpointWith(t, owner, `${receiver.origin}/plain`, 0);
  });
  afterAll(async () => {
    await t?.close();
    await receiver?.close();
  });

  const storedOf = async (id: string) =>
    (await t.db.prisma.webhookDelivery.findUniqueOrThrow({ where: { id } })).payload as unknown as StoredView;
  const requestFor = (path: string, deliveryId: string) =>
    waitFor(() => receiver.at(path).find((r) => r.headers['webhook-id'] === deliveryId), { what: `delivery ${deliveryId} at ${path}` });

  it('sends the views of a card within the window as one signed delivery once it closes; saves and other endpoints are not held', async () => {
    const started = Date.now();
    await view(t, `/api/u/card/${card}?source=qr`, ada);
    await view(t, `/api/u/card/${card}`, grace);
    await view(t, `/api/u/card/${card}`);
    await view(t, `/api/u/${owner.username}/card/${card}?source=nfc`, ada);
    await view(t, `/api/u/card/${otherCard}`, grace);
    await view(t, `/api/u/${owner.username}`);
    expect((await t.app.inject({ method: 'POST', url: `/api/cards/${card}/save`, headers: ada.auth })).statusCode).toBe(201);

    // Durable before the responses: one open row per card and one for the profile; the save has its own.
    const rows = await deliveriesOf(t, coalesced.id);
    const views = rows.filter((r) => r.eventType === 'card.viewed');
    const save = rows.find((r) => r.eventType === 'contact.saved')!;
    expect(views).toHaveLength(3);
    expect(rows).toHaveLength(4);
    const byCard = new Map(views.map((r) => [(r.payload as unknown as StoredView).data.cardId, r]));
    expect((byCard.get(card)!.payload as unknown as StoredView).data.count).toBe(4);

    // The endpoint without a window gets every view at once, each exactly the contract's body.
    const plainRows = await deliveriesOf(t, plain.id);
    expect(plainRows).toHaveLength(7);
    for (const row of plainRows.filter((r) => r.eventType === 'card.viewed')) {
      const request = await requestFor('/plain', row.id);
      expect(request.body).toBe(expectedBody(row.eventId, row.payload as unknown as StoredView));
      expectSigned(request, plain.secret);
    }
    // So does the save at the coalescing endpoint: contact.saved never waits.
    const saveRequest = await requestFor('/coalesced', save.id);
    expect(save.coalesceKey).toBeNull();
    expect(JSON.parse(saveRequest.body).data).toEqual({ userId: owner.id, cardId: card, savedBy: { id: ada.id, username: ada.username } });

    const cardRow = byCard.get(card)!;
    const request = await requestFor('/coalesced', cardRow.id);
    // Not before the window closed (the row was written after `started`, due 2 s later).
    expect(request.receivedAt).toBeGreaterThanOrEqual(started + 2_000);
    const stored = await storedOf(cardRow.id);
    expect(stored.data).toMatchObject({
      viewer: { id: ada.id, username: ada.username },
      source: 'qr',
      count: 4,
      firstViewedAt: stored.timestamp,
    });
    expect(Date.parse(stored.data.lastViewedAt!)).toBeGreaterThanOrEqual(Date.parse(stored.data.firstViewedAt!));
    // Distinct signed-in viewers, in order; the anonymous view and ada's second view only count.
    expect(request.body).toBe(expectedBody(cardRow.eventId, stored, [ada, grace]));
    expectSigned(request, coalesced.secret);

    const otherRequest = await requestFor('/coalesced', byCard.get(otherCard)!.id);
    expect(otherRequest.body).toBe(expectedBody(byCard.get(otherCard)!.eventId, await storedOf(byCard.get(otherCard)!.id), [grace]));
    const profileRequest = await requestFor('/coalesced', byCard.get(null)!.id);
    expect(JSON.parse(profileRequest.body).data).toMatchObject({ cardId: null, viewer: null, count: 1, viewers: [] });

    const done = await waitFor(async () => {
      const all = await deliveriesOf(t, coalesced.id);
      return all.every((r) => r.status === 'success') ? all : undefined;
    });
    expect(done.map((r) => [r.attempts, r.coalesceKey])).toEqual(done.map(() => [1, null]));
    expect(receiver.at('/coalesced')).toHaveLength(4);
  });

  it('opens a new delivery for a view after the last one went out', async () => {
    const before = new Set((await deliveriesOf(t, coalesced.id)).map((r) => r.id));
    await view(t, `/api/u/card/${card}?source=link`, grace);
    const added = (await deliveriesOf(t, coalesced.id)).filter((r) => !before.has(r.id));
    expect(added).toHaveLength(1);
    expect(added[0]).toMatchObject({ status: 'pending', claimToken: null, coalesceKey: expect.any(String) });
    const request = await requestFor('/coalesced', added[0]!.id);
    const stored = await storedOf(added[0]!.id);
    expect(stored.data).toMatchObject({ count: 1, viewer: { id: grace.id }, source: 'link' });
    expect(request.body).toBe(expectedBody(added[0]!.eventId, stored, [grace]));
    expectSigned(request, coalesced.secret);
  });

  it('folds 50 concurrent views into exactly one delivery with the right count', async () => {
    const wide = await createEndpointWith(t, owner, `${receiver.origin}/concurrent`, 60);
    const visitors = await Promise.all(Array.from({ length: 50 }, () => signUp(t.app)));
    await Promise.all(visitors.map((visitor, i) => view(t, `/api/u/card/${otherCard}?source=${i % 2 ? 'qr' : 'nfc'}`, visitor)));

    const [row, ...rest] = await deliveriesOf(t, wide.id);
    expect(rest).toHaveLength(0);
    const data = (row!.payload as unknown as StoredView).data;
    expect(data.count).toBe(50);
    expect(data.viewers).toHaveLength(MAX_COALESCED_VIEWERS);
    const visitorIds = new Set(visitors.map((v) => v.id));
    expect(new Set(data.viewers!.map((v) => v.id)).size).toBe(MAX_COALESCED_VIEWERS);
    expect(data.viewers!.every((v) => visitorIds.has(v.id))).toBe(true);

    // Let the window pass for the row, the way the database sees time, and wake the worker.
    await makeDueNow(t.db, { deliveryId: row!.id });
    t.app.webhooks.worker!.poke();
    const request = await requestFor('/concurrent', row!.id);
    expect(JSON.parse(request.body).data.count).toBe(50);
    expectSigned(request, wide.secret);
  });
});

describe('delivery engine: coalesced card.viewed across a restart', () => {
  let store: TestStore | undefined;
  let receiver: Receiver | undefined;
  const apps: TestApp[] = [];
  afterAll(async () => {
    for (const t of apps) await t.close({ keepStore: true }).catch(() => {});
    await store?.drop();
    await receiver?.close();
  });

  it('delivers a delivery that was open when the app closed, with every view folded in before', async () => {
    store = await createTestStore({ persistent: true });
    receiver = await startReceiver();
    const first = await buildTestApp({ store, env: ENV });
    apps.push(first);
    const owner = await signUp(first.app, uniqueUsername('restart'));
    const ada = await signUp(first.app, uniqueUsername('ada'));
    const card = await createCard(first.app, owner);
    // A window long enough that the first app surely closes before it ends.
    const endpoint = await createEndpointWith(first, owner, `${receiver.origin}/restart`, 600);
    await view(first, `/api/u/card/${card}?source=qr`, ada);
    await view(first, `/api/u/card/${card}`);
    await view(first, `/api/u/card/${card}`, ada);
    await first.close({ keepStore: true });
    apps.pop();

    // Still open; then the window is made to end a second from now, as if the app had been down that long.
    const db = await store.open();
    let id: string;
    try {
      const [row, ...rest] = await db.prisma.webhookDelivery.findMany({ where: { endpointId: endpoint.id } });
      expect(rest).toHaveLength(0);
      expect(row).toMatchObject({ status: 'pending', attempts: 0, claimToken: null, coalesceKey: expect.any(String) });
      id = row!.id;
      await makeDueNow(db, { deliveryId: id }, 1_000);
    } finally {
      await db.close();
    }
    expect(receiver.requests).toHaveLength(0);

    const second = await buildTestApp({ store, env: ENV });
    apps.push(second);
    const request = await waitFor(() => receiver!.requests[0], { timeoutMs: 20_000, what: 'the delivery after the restart' });
    expect(request.headers['webhook-id']).toBe(id);
    expect(JSON.parse(request.body).data).toMatchObject({
      count: 3,
      viewers: [{ id: ada.id, username: ada.username }],
      viewer: { id: ada.id },
    });
    expectSigned(request, endpoint.secret);
    await waitFor(async () => (await second.db.prisma.webhookDelivery.findUnique({ where: { id } }))?.status === 'success');
    expect(receiver.requests).toHaveLength(1);
    // Two persistent embedded stores opened and closed: slow on a loaded machine.
  }, 90_000);
});

// An API process that does not deliver, and a worker process, share the queue through PostgreSQL.
describe.skipIf(!process.env.DATABASE_URL)('delivery engine: coalesced card.viewed with worker processes', { timeout: 90_000 }, () => {
  const cleanups: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => {});
  });

  it('a worker process delivers the coalesced delivery when the window closes, told by NOTIFY, not by its sweep', async () => {
    const store = await createTestStore();
    cleanups.push(() => store.drop());
    const receiver = await startReceiver();
    cleanups.push(() => receiver.close());
    const api = await buildTestApp({ store, env: { WEBHOOK_WORKER: 'off' } });
    cleanups.push(() => api.close({ keepStore: true }));
    const owner = await signUp(api.app, uniqueUsername('apart'));
    const ada = await signUp(api.app, uniqueUsername('ada'));
    const card = await createCard(api.app, owner);
    const endpoint = await createEndpointWith(api, owner, `${receiver.origin}/apart`, 2);

    const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', 'src/worker.ts'], {
      cwd: ROOT,
      env: { ...process.env, ...TEST_ENV, ...store.env, ...ENV, LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    cleanups.push(async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await once(child, 'exit');
      }
    });
    let output = '';
    child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    await waitFor(() => output.includes('webhook worker listening for dispatches'), { timeoutMs: 20_000, what: 'the worker to listen' });

    const started = Date.now();
    for (let i = 0; i < 3; i++) await view(api, `/api/u/card/${card}`, i === 1 ? undefined : ada);
    const request = await waitFor(() => receiver.requests[0], { timeoutMs: 20_000, what: 'the coalesced delivery' });
    expect(request.receivedAt).toBeGreaterThanOrEqual(started + 2_000);
    expect(JSON.parse(request.body).data).toMatchObject({ count: 3, viewers: [{ id: ada.id }] });
    expectSigned(request, endpoint.secret);
    const [row, ...rest] = await deliveriesOf(api, endpoint.id);
    expect(rest).toHaveLength(0);
    expect(request.headers['webhook-id']).toBe(row!.id);
  });
});
