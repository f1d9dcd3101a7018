import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { endpointReceiverOnDroppedSecrets, receiverOnDroppedSecrets } from '../../src/webhooks/secret-overlap.ts';
import { collectScans } from '../../bench/lib/query-plan.ts';
import type { SqlRunner } from '../../src/db/sql-runner.ts';
import { explaining } from '../helpers/explaining.ts';
import { openQueueStore, type QueueStore } from '../helpers/queue-store.ts';

/** Where a delivery and its attempts are (the migration 20261130090000_delivery_queue_and_log). */
const HISTORY_TABLES = ['webhook_delivery_log', 'webhook_earlier_attempts', 'webhook_queue'];

/**
 * The rotation hint (RECEIVER_ON_PREVIOUS_SECRET) reads an endpoint's attempt history; with a
 * long history it must go through indexes, never read the delivery or attempt tables whole.
 * Both stores are PostgreSQL, so both EXPLAIN.
 */
describe('rotation hint queries', () => {
  let fixture: QueueStore | undefined;
  let sql: SqlRunner;
  let endpointId: string;
  let refusedDeliveryId: string;

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
    // A long history on both endpoints: accepted attempts signed with the old secret (every fourth
    // delivery after a failed first attempt), then one refused with the new only. Finished
    // deliveries hold their last attempt; the ones before it are earlier attempts.
    for (const ep of endpoints) {
      await sql.query(
        `WITH d AS (
           INSERT INTO webhook_delivery_log (endpoint_id, id, event_id, event_type, status, attempts, attempt_started_at,
                                             attempt_duration_ms, response_code, signed_with)
           SELECT $1::uuid, webhook_uuid7(now() - (4000 - n) * interval '1 second'), webhook_uuid7(), 'card.viewed', 'success',
                  CASE WHEN n % 4 = 0 THEN 2 ELSE 1 END, now() - (4000 - n) * interval '1 second', 5, 200, '0ld0ld00'
           FROM generate_series(1, 4000) AS n
           RETURNING id, attempts, attempt_started_at
         )
         INSERT INTO webhook_earlier_attempts (delivery_id, attempt_number, started_at, duration_ms, response_code, signed_with)
         SELECT d.id, 1, d.attempt_started_at - interval '500 milliseconds', 5, 500, ARRAY['0ld0ld00'] FROM d WHERE d.attempts = 2`,
        [ep.id],
      );
    }
    const [refused] = await sql.query<{ id: string }>(
      `INSERT INTO webhook_delivery_log (endpoint_id, id, event_id, event_type, status, attempts, attempt_started_at, attempt_duration_ms,
                                         response_code, signed_with)
       VALUES ($1::uuid, webhook_uuid7(), webhook_uuid7(), 'card.viewed', 'failed', 1, now() + interval '1 second', 5, 401, 'new0new0')
       RETURNING id`,
      [endpointId],
    );
    refusedDeliveryId = refused!.id;
    // And a backlog in the queue, of the other endpoint.
    await sql.query(
      `INSERT INTO webhook_queue (endpoint_id, delivery_id, event_id, event_type, due_at)
       SELECT $1::uuid, webhook_uuid7(now() - n * interval '1 second'), webhook_uuid7(), 'card.viewed', now() + interval '1 day'
       FROM generate_series(1, 4000) AS n`,
      [endpoints[1]!.id],
    );
    await sql.exec('ANALYZE webhook_delivery_log; ANALYZE webhook_earlier_attempts; ANALYZE webhook_queue');
  });
  afterAll(async () => fixture?.close());

  it('label the refused attempt, reading deliveries and attempts through indexes only', async () => {
    const plans: unknown[] = [];
    const runner = explaining(sql, plans);
    expect(await endpointReceiverOnDroppedSecrets(runner, endpointId)).toEqual(['0ld0ld00']);
    expect((await receiverOnDroppedSecrets(runner, endpointId, refusedDeliveryId, [1])).get(1)).toEqual(['0ld0ld00']);
    expect(plans.length).toBeGreaterThanOrEqual(2);
    const scans = plans.flatMap((plan) => collectScans(plan));
    // Scans of a partitioned table name the partition read (here each table's DEFAULT one).
    const history = scans.filter((s) => HISTORY_TABLES.some((table) => s.relation?.startsWith(table)));
    expect(history.filter((s) => s.type === 'Seq Scan')).toEqual([]);
    // The endpoint's newest deliveries, through the log's (endpoint_id, id) key.
    expect(history.map((s) => s.index)).toContain('webhook_delivery_log_default_pkey');
  });
});
