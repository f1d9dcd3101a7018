import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp, type TestApp } from '../helpers/app.ts';
import { createCard } from '../helpers/cards.ts';
import { startReceiver, type Receiver } from '../helpers/receiver.ts';
import { signUp, uniqueUsername, type Session } from '../helpers/users.ts';
import { createEndpoint } from '../helpers/webhook-api.ts';

/**
 * Contract §4, "the event and its rows are one write": a recorded view or a first save commits
 * together with the delivery rows it fans out to, or neither does. The fan-out is made to fail
 * after the view or save statement ran by a trigger in this test's own store.
 */
describe('an event and its delivery rows are one write', () => {
  let t: TestApp;
  let receiver: Receiver;
  let owner: Session;
  let viewer: Session;
  let cardId: string;
  let endpointId: string;

  beforeAll(async () => {
    t = await buildTestApp({ env: { WEBHOOK_WORKER: 'off' } });
    receiver = await startReceiver();
    owner = await signUp(t.app, uniqueUsername('owner'));
    viewer = await signUp(t.app, uniqueUsername('viewer'));
    cardId = await createCard(t.app, owner);
    endpointId = (await createEndpoint(t.app, owner, `${receiver.origin}/hook`)).id;
    await t.db.sql.exec(`CREATE FUNCTION refuse_fan_out() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN RAISE EXCEPTION 'fan-out refused by the test'; END $$`);
  });
  afterAll(async () => {
    await t?.close();
    await receiver?.close();
  });

  async function failingFanOut<T>(run: () => Promise<T>): Promise<T> {
    // A delivery row is its queue row; the event's bytes, written before it, must go with it.
    await t.db.sql.exec('CREATE TRIGGER refuse_fan_out BEFORE INSERT ON webhook_queue FOR EACH ROW EXECUTE FUNCTION refuse_fan_out()');
    try {
      return await run();
    } finally {
      await t.db.sql.exec('DROP TRIGGER refuse_fan_out ON webhook_queue');
    }
  }
  const counts = async () => ({
    views: await t.db.prisma.cardView.count({ where: { ownerId: owner.id } }),
    saves: await t.db.prisma.savedCard.count({ where: { cardId } }),
    deliveries: await t.db.prisma.webhookDelivery.count({ where: { endpointId } }),
  });

  it('a view whose fan-out fails is not recorded, and the answer is a 500 with the error shape', async () => {
    const before = await counts();
    for (const url of [`/api/u/card/${cardId}`, `/api/u/${owner.username}`, `/api/u/${owner.username}/card/${cardId}`]) {
      const res = await failingFanOut(() => t.app.inject({ method: 'GET', url, headers: viewer.auth }));
      expect(res.statusCode, url).toBe(500);
      expect(res.json()).toEqual({ error: { code: 'INTERNAL_ERROR', message: expect.any(String) } });
    }
    expect(await counts()).toEqual(before);
  });

  it('a view whose fan-out commits is recorded with its delivery row', async () => {
    const before = await counts();
    expect((await t.app.inject({ method: 'GET', url: `/api/u/card/${cardId}`, headers: viewer.auth })).statusCode).toBe(200);
    expect(await counts()).toEqual({ ...before, views: before.views + 1, deliveries: before.deliveries + 1 });
  });

  it('a first save whose fan-out fails is not saved, so saving again is still the first save', async () => {
    const save = () => t.app.inject({ method: 'POST', url: `/api/cards/${cardId}/save`, headers: viewer.auth });
    const before = await counts();
    const refused = await failingFanOut(save);
    expect(refused.statusCode).toBe(500);
    expect(refused.json().error.code).toBe('INTERNAL_ERROR');
    expect(await counts()).toEqual(before);

    const saved = await save();
    expect(saved.statusCode).toBe(201);
    expect(await counts()).toEqual({ ...before, saves: before.saves + 1, deliveries: before.deliveries + 1 });
    const row = await t.db.prisma.webhookDelivery.findFirstOrThrow({ where: { endpointId, eventType: 'contact.saved' } });
    expect(row.payload).toMatchObject({ data: { userId: owner.id, cardId, savedBy: { id: viewer.id } } });
    expect((await save()).json()).toEqual({ alreadySaved: true });
  });
});
