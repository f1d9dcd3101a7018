import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DeliveryHealth } from '../../src/webhooks/endpoints/delivery-health.ts';
import { requeueFailed } from '../../src/webhooks/queue/requeue.ts';
import { collectScans, type PlanScan } from '../../bench/lib/query-plan.ts';
import type { SqlRunner } from '../../src/db/sql-runner.ts';
import { explaining } from '../helpers/explaining.ts';
import { openQueueStore, type QueueStore } from '../helpers/queue-store.ts';

/** Where a delivery and its attempts are (the migration 20261130090000_delivery_queue_and_log). */
const HISTORY_TABLES = ['webhook_delivery_log', 'webhook_earlier_attempts', 'webhook_queue'];
const DAYS = 20;
/** Minutes between two deliveries of the endpoint under test, and of the others (busier, so its history is a small part). */
const EVERY_MINUTES = 7;
const OTHERS_EVERY_MINUTES = 1;

/**
 * The health chart and the recover read a window of one endpoint's history: with a long history
 * on several endpoints they must go through the keys — the log's (endpoint_id, id) and the
 * queue's (endpoint_id, delivery_id) bounded by the window's UUIDv7 floors, the earlier attempts'
 * (delivery_id, attempt_number) — never read a history table whole. Both stores are PostgreSQL,
 * so both EXPLAIN.
 */
describe('health and recover queries', () => {
  let fixture: QueueStore | undefined;
  let sql: SqlRunner;
  let endpointId: string;

  beforeAll(async () => {
    fixture = await openQueueStore('health_plans');
    sql = fixture.db.sql;
    const endpoints = await Promise.all(
      [1, 2, 3].map((n) =>
        fixture!.db.prisma.webhookEndpoint.create({
          data: { userId: fixture!.userId, url: `https://example.com/${n}`, secretEncrypted: 'sealed', events: ['card.viewed'] },
        }),
      ),
    );
    endpointId = endpoints[0]!.id;
    // 20 days of history on each endpoint, a delivery every few minutes: every fifth failed after
    // two attempts (one earlier attempt each), the others succeeded at once; a pending backlog too.
    for (const ep of endpoints) {
      const every = ep.id === endpointId ? EVERY_MINUTES : OTHERS_EVERY_MINUTES;
      await sql.query(
        `WITH d AS (
           INSERT INTO webhook_delivery_log (endpoint_id, id, event_id, event_type, status, attempts, attempt_started_at,
                                             attempt_duration_ms, response_code)
           SELECT $1::uuid, webhook_uuid7(now() - n * $3::int * interval '1 minute'), webhook_uuid7(), 'card.viewed',
                  (CASE WHEN n % 5 = 0 THEN 'failed' ELSE 'success' END)::webhook_delivery_status, CASE WHEN n % 5 = 0 THEN 2 ELSE 1 END,
                  now() - n * $3::int * interval '1 minute', 20 + n % 100, CASE WHEN n % 5 = 0 THEN 500 ELSE 200 END
           FROM generate_series(1, $2::int) AS n
           RETURNING id, attempts, attempt_started_at
         )
         INSERT INTO webhook_earlier_attempts (delivery_id, attempt_number, started_at, duration_ms, response_code)
         SELECT d.id, 1, d.attempt_started_at - interval '30 seconds', 80, 500 FROM d WHERE d.attempts = 2`,
        [ep.id, Math.floor((DAYS * 24 * 60) / every), every],
      );
      await sql.query(
        `INSERT INTO webhook_queue (endpoint_id, delivery_id, event_id, event_type, due_at, attempts)
         SELECT $1::uuid, webhook_uuid7(now() - n * $2::int * interval '1 minute'), webhook_uuid7(), 'card.viewed', now() + interval '1 day', n % 2
         FROM generate_series(1, $3::int) AS n`,
        [ep.id, every * 5, Math.floor((DAYS * 24 * 60) / (every * 5))],
      );
    }
    await sql.exec('ANALYZE webhook_delivery_log; ANALYZE webhook_earlier_attempts; ANALYZE webhook_queue');
  });
  afterAll(async () => fixture?.close());

  /**
   * The scans of history tables: those of a partitioned table are named by the partition read
   * (here each table's DEFAULT one), and a bitmap index scan by its index only.
   */
  const historyScans = (plans: unknown[]): PlanScan[] =>
    plans.flatMap((plan) => collectScans(plan)).filter((s) => HISTORY_TABLES.some((table) => (s.relation ?? s.index)?.startsWith(table)));

  it.each(['24h', '7d'] as const)('the %s health chart reads the window through the keys only', async (window) => {
    const plans: unknown[] = [];
    const health = new DeliveryHealth({ db: { ...fixture!.db, sql: explaining(sql, plans) } });
    const { buckets } = await health.get(fixture!.userId, endpointId, { window });
    expect(buckets.reduce((sum, b) => sum + b.success + b.failed, 0)).toBeGreaterThan(100);
    expect(buckets.some((b) => b.pending > 0 && b.p95Ms !== null)).toBe(true);

    expect(plans).toHaveLength(1);
    const scans = historyScans(plans);
    expect(scans.filter((s) => s.type === 'Seq Scan')).toEqual([]);
    const indexes = scans.map((s) => s.index);
    expect(indexes).toContain('webhook_delivery_log_default_pkey');
    expect(indexes).toContain('webhook_queue_pkey');
    expect(indexes).toContain('webhook_earlier_attempts_default_pkey');
  });

  it('the recover moves the window through the keys only', async () => {
    const plans: unknown[] = [];
    const result = await requeueFailed(explaining(sql, plans), {
      endpointId,
      since: new Date(Date.now() - 6 * 3_600_000),
      until: new Date(),
      maxAttempts: 25,
      notify: false,
    });
    expect(result).toMatchObject({ active: true, requeued: expect.any(Number), skipped: 0 });
    expect(result.requeued).toBeGreaterThan(5);

    expect(plans).toHaveLength(1);
    const scans = historyScans(plans);
    expect(scans.filter((s) => s.type === 'Seq Scan')).toEqual([]);
    expect(scans.map((s) => s.index)).toContain('webhook_delivery_log_default_pkey');
  });
});
