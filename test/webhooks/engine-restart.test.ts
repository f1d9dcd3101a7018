import { afterAll, describe, expect, it } from 'vitest';
import { buildTestApp, type TestApp } from '../helpers/app.ts';
import { answer, startReceiver, type Receiver } from '../helpers/receiver.ts';
import { createTestStore, type TestStore } from '../helpers/store.ts';
import { signUp, uniqueUsername } from '../helpers/users.ts';
import { waitFor } from '../helpers/wait.ts';
import { createEndpoint } from '../helpers/webhook-api.ts';

// Retries wait long enough for the app to be closed while they are pending.
const ENV = { WEBHOOK_RETRY_SCHEDULE: '1500ms,1500ms,1500ms' };

describe('delivery engine: restart', () => {
  let store: TestStore | undefined;
  let receiver: Receiver | undefined;
  const apps: TestApp[] = [];
  afterAll(async () => {
    for (const t of apps) await t.close({ keepStore: true }).catch(() => {});
    await store?.drop();
    await receiver?.close();
  });

  it('delivers, after a restart, the retries that were waiting when the app closed', async () => {
    store = await createTestStore({ persistent: true });
    let calls = 0;
    receiver = await startReceiver((request, res) => answer(++calls <= 2 ? 500 : 200)(request, res));

    const first = await buildTestApp({ store, env: ENV });
    apps.push(first);
    const owner = await signUp(first.app, uniqueUsername('restart'));
    const endpoint = await createEndpoint(first.app, owner, `${receiver.origin}/restart`);
    const ids: string[] = [];
    for (let i = 0; i < 2; i++) {
      const res = await first.app.inject({ method: 'POST', url: `/api/webhooks/${endpoint.id}/test`, headers: owner.auth });
      expect(res.statusCode).toBe(202);
      ids.push(res.json().deliveryId);
    }
    // Both failed once and wait for their retry.
    await waitFor(async () => {
      const rows = await first.db.prisma.webhookDelivery.findMany({ where: { id: { in: ids } } });
      return rows.length === 2 && rows.every((r) => r.attempts === 1 && r.claimToken === null);
    });
    await first.close({ keepStore: true });
    apps.pop();

    const waiting = await (async () => {
      const db = await store.open();
      try {
        return await db.prisma.webhookDelivery.findMany({ where: { id: { in: ids } } });
      } finally {
        await db.close();
      }
    })();
    // Still pending with a retry planned; whether it is already due depends on how long closing took.
    for (const row of waiting) {
      expect(row).toMatchObject({ status: 'pending', attempts: 1, claimToken: null, nextRetryAt: expect.any(Date) });
    }
    expect(receiver.requests).toHaveLength(2);

    const second = await buildTestApp({ store, env: ENV });
    apps.push(second);
    const done = await waitFor(
      async () => {
        const rows = await second.db.prisma.webhookDelivery.findMany({ where: { id: { in: ids } } });
        return rows.every((r) => r.status === 'success') ? rows : undefined;
      },
      { timeoutMs: 10_000, what: 'the retries after the restart' },
    );
    expect(done.map((r) => r.attempts)).toEqual([2, 2]);
    expect(receiver.requests).toHaveLength(4);
    // Each delivery was sent twice, with its own id both times.
    const perId = new Map<string, number>();
    for (const request of receiver.requests) {
      const id = String(request.headers['webhook-id']);
      perId.set(id, (perId.get(id) ?? 0) + 1);
    }
    expect(Object.fromEntries(perId)).toEqual(Object.fromEntries(ids.map((id) => [id, 2])));
    // Two persistent embedded stores opened and closed: slow on a loaded machine.
  }, 90_000);
});
