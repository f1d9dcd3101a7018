import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SqlRunner } from '../../src/db/sql-runner.ts';
import { endpointReceiverOnDroppedSecrets, receiverOnDroppedSecrets } from '../../src/webhooks/secret-overlap.ts';
import { collectScans } from '../../bench/lib/query-plan.ts';
import { openQueueStore, type QueueStore } from '../helpers/queue-store.ts';

/**
 * The rotation hint (RECEIVER_ON_PREVIOUS_SECRET) reads an endpoint's attempt history; with a
 * long history it must go through indexes, never read the delivery or attempt tables whole.
 * Both stores are PostgreSQL, so both EXPLAIN.
 */
describe('rotation hint queries', () => {
  let fixture: QueueStore | undefined;
  let sql: SqlRunner;
  let endpointId: string;
  let refusedAttemptId: string;

  beforeAll(async () => {
    fixture = await openQueueStore('plans');
    sql = fixture.db.sql;
    const endpoints = await Promise.all(
      [1, 2].map((n) =>
        fixture!.db.prisma.webhookEndpoint.create({
          data: { userId: fixture!.userId, url: `https://example.com/${n}`, secretEncrypted: 'sealed', events: ['card.viewed'] },
        }),
      ),
    );
    endpointId = endpoints[0]!.id;
    // A long history on both endpoints: accepted attempts signed with the old secret, then one refused with the new only.
    for (const ep of endpoints) {
      await sql.query(
        `WITH d AS (
           INSERT INTO webhook_deliveries (id, endpoint_id, event_id, event_type, payload, status, attempts, created_at, updated_at)
           SELECT gen_random_uuid(), $1::uuid, gen_random_uuid(), 'card.viewed', '{}', 'success', 1,
                  now() - (4000 - n) * interval '1 second', now()
           FROM generate_series(1, 4000) AS n
           RETURNING id, created_at
         )
         INSERT INTO webhook_delivery_attempts (id, delivery_id, attempt_number, started_at, duration_ms, response_code, signed_with)
         SELECT gen_random_uuid(), d.id, 1, d.created_at, 5, 200, ARRAY['0ld0ld00'] FROM d`,
        [ep.id],
      );
    }
    const [refused] = await sql.query<{ id: string }>(
      `WITH d AS (
         INSERT INTO webhook_deliveries (id, endpoint_id, event_id, event_type, payload, status, attempts, created_at, updated_at)
         VALUES (gen_random_uuid(), $1::uuid, gen_random_uuid(), 'card.viewed', '{}', 'failed', 1, now(), now())
         RETURNING id
       )
       INSERT INTO webhook_delivery_attempts (id, delivery_id, attempt_number, started_at, duration_ms, response_code, signed_with)
       SELECT gen_random_uuid(), d.id, 1, now() + interval '1 second', 5, 401, ARRAY['new0new0'] FROM d
       RETURNING id`,
      [endpointId],
    );
    refusedAttemptId = refused!.id;
    await sql.exec('ANALYZE webhook_deliveries; ANALYZE webhook_delivery_attempts');
  });
  afterAll(async () => fixture?.close());

  /** Runs each statement as the code does, after recording its plan. */
  function explaining(plans: unknown[]): SqlRunner {
    return {
      async query<T>(text: string, params?: unknown[]) {
        const [row] = await sql.query<{ 'QUERY PLAN': unknown }>(`EXPLAIN (FORMAT JSON) ${text}`, params);
        plans.push(typeof row?.['QUERY PLAN'] === 'string' ? JSON.parse(row['QUERY PLAN']) : row?.['QUERY PLAN']);
        return sql.query<T>(text, params);
      },
      exec: (script) => sql.exec(script),
    };
  }

  it('label the refused attempt, reading deliveries and attempts through indexes only', async () => {
    const plans: unknown[] = [];
    const runner = explaining(plans);
    expect(await endpointReceiverOnDroppedSecrets(runner, endpointId)).toEqual(['0ld0ld00']);
    expect((await receiverOnDroppedSecrets(runner, endpointId, [refusedAttemptId])).get(refusedAttemptId)).toEqual(['0ld0ld00']);
    expect(plans.length).toBeGreaterThanOrEqual(2);
    const scans = plans.flatMap((plan) => collectScans(plan));
    const history = scans.filter((s) => s.relation === 'webhook_deliveries' || s.relation === 'webhook_delivery_attempts');
    expect(history.filter((s) => s.type === 'Seq Scan')).toEqual([]);
    expect(history.map((s) => s.index)).toContain('webhook_deliveries_endpoint_id_created_at_idx');
  });
});
