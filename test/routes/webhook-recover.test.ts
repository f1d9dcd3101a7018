import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestApp } from '../helpers/app.ts';
import { attemptsFrom, logFinished, type FinishedDelivery } from '../helpers/delivery-history.ts';
import { insertDelivery } from '../helpers/deliveries.ts';
import { asUser, signUp, type Session } from '../helpers/users.ts';
import { buildWebhookTestApp, createEndpoint } from '../helpers/webhook-api.ts';

/**
 * POST /api/webhooks/:id/recover moves exactly the endpoint's failed deliveries of the window
 * from the log back to the queue (worker off: the rows are read as the recover left them), and
 * refuses what it must. The re-sends themselves: test/webhooks/recover-delivery.test.ts.
 */

const MAX_ATTEMPTS = 6;
const RETENTION_DAYS = 3;
const MINUTE = 60_000;

describe('POST /api/webhooks/:id/recover', () => {
  let t: TestApp;
  let alice: Session;
  let bob: Session;

  beforeAll(async () => {
    t = await buildWebhookTestApp({
      env: {
        WEBHOOK_MAX_ATTEMPTS_PER_DELIVERY: String(MAX_ATTEMPTS),
        WEBHOOK_RETENTION_DAYS: String(RETENTION_DAYS),
        WEBHOOK_MAX_ENDPOINTS_PER_USER: '100',
      },
    });
    alice = await signUp(t.app);
    bob = await signUp(t.app);
  });
  afterAll(async () => t.close());

  const recover = (user: Session, endpointId: string, payload: unknown) =>
    asUser(t.app, user, { method: 'POST', url: `/api/webhooks/${endpointId}/recover`, payload: payload as object });
  const minutesAgo = (minutes: number) => new Date(Date.now() - minutes * MINUTE);
  const log = (endpointId: string, minutes: number, status: FinishedDelivery['status'], attempts = 1) =>
    logFinished(t.db, {
      endpointId,
      createdAt: minutesAgo(minutes),
      status,
      attempts: attemptsFrom(minutesAgo(minutes), attempts, status === 'success' ? 200 : 500),
    }).then(({ id }) => id);
  const queueRows = (endpointId: string) =>
    t.db.sql.query<{ id: string; attempts: number; due_at: Date; claim_token: string | null }>(
      'SELECT delivery_id AS id, attempts, due_at, claim_token FROM webhook_queue WHERE endpoint_id = $1::uuid ORDER BY due_at, delivery_id',
      [endpointId],
    );
  const logRows = (endpointId: string) =>
    t.db.sql.query<{ id: string; status: string; attempts: number }>(
      'SELECT id, status::text, attempts FROM webhook_delivery_log WHERE endpoint_id = $1::uuid ORDER BY id',
      [endpointId],
    );
  const earlierAttempts = (id: string) =>
    t.db.sql.query<{ attempt_number: number; response_code: number | null }>(
      'SELECT attempt_number, response_code FROM webhook_earlier_attempts WHERE delivery_id = $1::uuid ORDER BY attempt_number',
      [id],
    );

  it('queues exactly the failed deliveries of the window again, oldest first, and counts those at the attempt cap', async () => {
    const { id: endpointId } = await createEndpoint(t.app, alice, 'https://hooks.example.com/recover');
    const { id: otherEndpointId } = await createEndpoint(t.app, alice, 'https://hooks.example.com/other');
    const { id: bobEndpointId } = await createEndpoint(t.app, bob, 'https://hooks.example.com/bob');

    const before = await log(endpointId, 130, 'failed', 4);
    const failed = [
      await log(endpointId, 110, 'failed', 4),
      await log(endpointId, 70, 'failed', 1),
      await log(endpointId, 30, 'failed', 2),
    ];
    const atCap = await log(endpointId, 60, 'failed', MAX_ATTEMPTS);
    const succeeded = await log(endpointId, 100, 'success', 2);
    const cancelled = await log(endpointId, 90, 'cancelled', 1);
    const pending = await insertDelivery(t.db, { endpointId, createdAt: minutesAgo(50), nextRetryAt: new Date(Date.now() + 3_600_000) });
    const otherFailed = await log(otherEndpointId, 80, 'failed', 1);
    const bobFailed = await log(bobEndpointId, 80, 'failed', 1);
    const logBefore = await logRows(endpointId);

    const since = minutesAgo(120).toISOString();
    const startedAt = Date.now();
    const res = await recover(alice, endpointId, { since });
    expect(res.statusCode, res.body).toBe(202);
    const body = res.json();
    expect(body).toEqual({ requeued: 3, skipped: 1, since, until: expect.any(String) });
    expect(Date.parse(body.until)).toBeGreaterThanOrEqual(startedAt);
    expect(Date.parse(body.until)).toBeLessThanOrEqual(Date.now());

    // The failed ones are pending again, with their ids and attempt counts, due one after another, oldest first.
    const queued = await queueRows(endpointId);
    expect(queued.map((row) => row.id)).toEqual([...failed, pending.id]);
    expect(queued.slice(0, 3).map((row) => row.attempts)).toEqual([4, 1, 2]);
    expect(queued.every((row) => row.claim_token === null)).toBe(true);
    const due = queued.slice(0, 3).map((row) => new Date(row.due_at).getTime());
    expect(new Set(due).size).toBe(3);
    expect(due[0]).toBeGreaterThanOrEqual(startedAt - 1_000);
    const views = await t.db.prisma.webhookDelivery.findMany({ where: { id: { in: failed } }, orderBy: { id: 'asc' } });
    expect(views.map((view) => [view.id, view.status, view.attempts])).toEqual([
      [failed[0], 'pending', 4],
      [failed[1], 'pending', 1],
      [failed[2], 'pending', 2],
    ]);
    // Their final attempts are earlier attempts now: every attempt is still logged.
    expect(await earlierAttempts(failed[0]!)).toEqual([1, 2, 3, 4].map((n) => ({ attempt_number: n, response_code: 500 })));
    expect(await earlierAttempts(failed[1]!)).toEqual([{ attempt_number: 1, response_code: 500 }]);

    // Everything else is as it was.
    expect(await logRows(endpointId)).toEqual(logBefore.filter((row) => !failed.includes(row.id)));
    expect((await logRows(endpointId)).map((row) => row.id).sort()).toEqual([before, atCap, succeeded, cancelled].sort());
    expect(await logRows(otherEndpointId)).toEqual([{ id: otherFailed, status: 'failed', attempts: 1 }]);
    expect(await logRows(bobEndpointId)).toEqual([{ id: bobFailed, status: 'failed', attempts: 1 }]);
    expect(await queueRows(otherEndpointId)).toEqual([]);

    // Nothing of the window is failed any more, but the one at the cap.
    expect((await recover(alice, endpointId, { since })).json()).toMatchObject({ requeued: 0, skipped: 1 });
  });

  it('ends the window at `until` (excluded) and starts it at `since` (included)', async () => {
    const { id: endpointId } = await createEndpoint(t.app, alice, 'https://hooks.example.com/until');
    const ids = [await log(endpointId, 40, 'failed'), await log(endpointId, 30, 'failed'), await log(endpointId, 20, 'failed')];
    const [, middle, newest] = await Promise.all(
      ids.map(async (id) => (await t.db.sql.query<{ at: Date }>('SELECT webhook_uuid7_time($1::uuid) AS at', [id]))[0]!.at),
    );
    // [middle, newest): only the middle one.
    const res = await recover(alice, endpointId, { since: new Date(middle!).toISOString(), until: new Date(newest!).toISOString() });
    expect(res.statusCode, res.body).toBe(202);
    expect(res.json()).toMatchObject({ requeued: 1, skipped: 0 });
    expect((await queueRows(endpointId)).map((row) => row.id)).toEqual([ids[1]]);
    // A window before them all.
    const early = await recover(alice, endpointId, { since: minutesAgo(60).toISOString(), until: minutesAgo(50).toISOString() });
    expect(early.json()).toMatchObject({ requeued: 0, skipped: 0 });
  });

  it('refuses a disabled endpoint with 409 ENDPOINT_DISABLED and moves nothing', async () => {
    const { id: endpointId } = await createEndpoint(t.app, alice, 'https://hooks.example.com/disabled');
    const failed = await log(endpointId, 30, 'failed');
    const patch = await asUser(t.app, alice, { method: 'PATCH', url: `/api/webhooks/${endpointId}`, payload: { isActive: false } });
    expect(patch.statusCode).toBe(200);
    const res = await recover(alice, endpointId, { since: minutesAgo(60).toISOString() });
    expect(res.statusCode).toBe(409);
    expect(res.json().error.code).toBe('ENDPOINT_DISABLED');
    expect(await logRows(endpointId)).toEqual([{ id: failed, status: 'failed', attempts: 1 }]);
    expect(await queueRows(endpointId)).toEqual([]);
  });

  // On PostgreSQL the two requests run on separate connections and truly race; the embedded store
  // runs them one after the other, where the rule must hold just the same.
  it('never leaves a delivery pending once a disable racing it has answered', async () => {
    for (let round = 0; round < 30; round++) {
      const { id: endpointId } = await createEndpoint(t.app, alice, `https://hooks.example.com/race-${round}`);
      const failed = [await log(endpointId, 30, 'failed'), await log(endpointId, 20, 'failed')];
      const [recovered, disabled] = await Promise.all([
        recover(alice, endpointId, { since: minutesAgo(60).toISOString() }),
        asUser(t.app, alice, { method: 'PATCH', url: `/api/webhooks/${endpointId}`, payload: { isActive: false } }),
      ]);
      expect(disabled.statusCode).toBe(200);
      expect(await queueRows(endpointId), `round ${round}`).toEqual([]);
      // Requeued before the disable: cancelled with the endpoint's other pending deliveries. Refused: still failed.
      const status = recovered.statusCode === 202 ? 'cancelled' : 'failed';
      if (recovered.statusCode !== 202) expect(recovered.json().error.code).toBe('ENDPOINT_DISABLED');
      expect(
        (await logRows(endpointId)).map((row) => [row.id, row.status]),
        `round ${round}`,
      ).toEqual(failed.map((id) => [id, status]));
    }
  });

  it("answers 404 for another user's endpoint and for a missing one, and moves nothing", async () => {
    const { id: endpointId } = await createEndpoint(t.app, alice, 'https://hooks.example.com/not-bobs');
    const failed = await log(endpointId, 30, 'failed');
    for (const id of [endpointId, randomUUID(), 'not-an-id']) {
      const res = await recover(bob, id, { since: minutesAgo(60).toISOString() });
      expect(res.statusCode, id).toBe(404);
      expect(res.json().error.code).toBe('NOT_FOUND');
    }
    expect(await logRows(endpointId)).toEqual([{ id: failed, status: 'failed', attempts: 1 }]);
  });

  it('refuses a malformed window with 400 VALIDATION_ERROR at its field, and one beyond retention with WINDOW_BEYOND_RETENTION', async () => {
    const { id: endpointId } = await createEndpoint(t.app, alice, 'https://hooks.example.com/windows');
    const failed = await log(endpointId, 30, 'failed');
    const hourAgo = minutesAgo(60).toISOString();
    const cases: Array<[unknown, string, string]> = [
      [{}, 'VALIDATION_ERROR', 'body.since'],
      [{ since: 'yesterday' }, 'VALIDATION_ERROR', 'body.since'],
      [{ since: '2026-02-30T00:00:00Z' }, 'VALIDATION_ERROR', 'body.since'],
      [{ since: hourAgo.slice(0, 10) }, 'VALIDATION_ERROR', 'body.since'],
      [{ since: hourAgo.replace('Z', '') }, 'VALIDATION_ERROR', 'body.since'],
      [{ since: Date.now() - 3_600_000 }, 'VALIDATION_ERROR', 'body.since'],
      [{ since: hourAgo, until: 'now' }, 'VALIDATION_ERROR', 'body.until'],
      [{ since: hourAgo, extra: true }, 'VALIDATION_ERROR', 'body'],
      [{ since: new Date(Date.now() + MINUTE).toISOString() }, 'VALIDATION_ERROR', 'body.since'],
      [{ since: hourAgo, until: new Date(Date.now() + MINUTE).toISOString() }, 'VALIDATION_ERROR', 'body.until'],
      [{ since: hourAgo, until: minutesAgo(90).toISOString() }, 'VALIDATION_ERROR', 'body.until'],
      [{ since: hourAgo, until: hourAgo }, 'VALIDATION_ERROR', 'body.until'],
      [{ since: minutesAgo(RETENTION_DAYS * 24 * 60 + 1).toISOString() }, 'WINDOW_BEYOND_RETENTION', 'body.since'],
    ];
    for (const [payload, code, field] of cases) {
      const res = await recover(alice, endpointId, payload);
      const what = `${JSON.stringify(payload)} → ${res.body}`;
      expect(res.statusCode, what).toBe(400);
      expect(res.json().error.code, what).toBe(code);
      expect(res.json().error.message, what).toMatch(new RegExp(`^${field.replace('.', '\\.')}`));
    }
    // Just inside retention is fine.
    expect((await recover(alice, endpointId, { since: minutesAgo(RETENTION_DAYS * 24 * 60 - 1).toISOString() })).statusCode).toBe(202);
    expect(await queueRows(endpointId)).toEqual([expect.objectContaining({ id: failed })]);
  });

  it('accepts any ISO 8601 offset', async () => {
    const { id: endpointId } = await createEndpoint(t.app, alice, 'https://hooks.example.com/offsets');
    const failed = await log(endpointId, 30, 'failed');
    const since = minutesAgo(60);
    // The same instant two hours east of UTC.
    const local = new Date(since.getTime() + 2 * 3_600_000).toISOString().replace('Z', '+02:00');
    const res = await recover(alice, endpointId, { since: local });
    expect(res.statusCode, res.body).toBe(202);
    expect(res.json()).toMatchObject({ requeued: 1, since: since.toISOString() });
    expect((await queueRows(endpointId)).map((row) => row.id)).toEqual([failed]);
  });
});
