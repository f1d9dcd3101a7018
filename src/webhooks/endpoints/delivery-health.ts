import { z } from 'zod';
import type { Database } from '../../db/database.ts';
import { uuid7Floor } from '../queue/partitions.ts';
import { findOwnEndpoint } from './find-own-endpoint.ts';
import { parseInput } from './schemas.ts';

/** An endpoint's deliveries hour by hour: how many ended how, and how long their attempts took. */

const HOUR_MS = 3_600_000;

/** Each window the health route offers, in hours (one bucket an hour). */
const HEALTH_WINDOW_HOURS = { '24h': 24, '7d': 168 } as const;
type HealthWindow = keyof typeof HEALTH_WINDOW_HOURS;
const HEALTH_WINDOWS = Object.keys(HEALTH_WINDOW_HOURS) as [HealthWindow, ...HealthWindow[]];

export const healthQuery = z.object({
  window: z.enum(HEALTH_WINDOWS, { error: `must be one of ${HEALTH_WINDOWS.join(', ')}` }).default('24h'),
});
export type HealthQuery = z.input<typeof healthQuery>;

const count = z.int().min(0);
const latency = z.int().nullable();

const healthBucketSchema = z.object({
  start: z.date().describe('The hour, from this time (included) to an hour later (excluded)'),
  success: count,
  failed: count,
  cancelled: count,
  pending: count,
  p50Ms: latency.describe('Median duration of the attempts that started in this hour; null without any'),
  p95Ms: latency.describe('95th percentile (nearest rank) of the same durations'),
});
type HealthBucket = z.infer<typeof healthBucketSchema>;

export const deliveryHealthSchema = z.object({
  window: z.enum(HEALTH_WINDOWS),
  from: z.date(),
  to: z.date().describe('The end of the last hour, which is the current one'),
  buckets: z.array(healthBucketSchema).describe('One per hour, oldest first'),
});
export type DeliveryHealthData = z.infer<typeof deliveryHealthSchema>;

type Outcome = 'success' | 'failed' | 'cancelled' | 'pending';

// One statement, through keys only: the log's (endpoint_id, id) and the queue's (endpoint_id,
// delivery_id) bounded by the UUIDv7 floors of the window (a UUIDv7 begins with its creation
// time, so only the day partitions of the window are read), then the earlier attempts of the
// deliveries found that had more than one, by their (delivery_id, attempt_number) key. Rows with
// `created_at` set have ids that are not UUIDv7 (from before the queue and log): left out, as
// their place in the key says nothing of their time. Hours are counted from $4 in epoch
// seconds, so the session's time zone cannot shift them.
const HEALTH = `WITH logged AS (
     SELECT l.id, l.status::text AS status, l.attempts, l.attempt_started_at, l.attempt_duration_ms
     FROM webhook_delivery_log l
     WHERE l.endpoint_id = $1::uuid AND l.id >= $2::uuid AND l.id < $3::uuid AND l.created_at IS NULL
   ),
   queued AS (
     SELECT q.delivery_id AS id, q.attempts
     FROM webhook_queue q
     WHERE q.endpoint_id = $1::uuid AND q.delivery_id >= $2::uuid AND q.delivery_id < $3::uuid AND q.created_at IS NULL
   ),
   outcomes AS (
     SELECT floor(extract(epoch FROM webhook_uuid7_time(d.id) - $4::timestamptz) / 3600)::int AS bucket, d.status, count(*)::int AS n
     FROM (SELECT id, status FROM logged UNION ALL SELECT id, 'pending' FROM queued) d
     GROUP BY 1, 2
   ),
   retried AS (
     -- Deliveries with attempts off their log row (a finished delivery's final one is on it), and how many.
     SELECT id, attempts - 1 AS earlier FROM logged WHERE attempts > 1 AND attempt_started_at IS NOT NULL
     UNION ALL SELECT id, attempts FROM logged WHERE attempts > 0 AND attempt_started_at IS NULL
     UNION ALL SELECT id, attempts FROM queued WHERE attempts > 0
   ),
   attempts AS (
     SELECT attempt_started_at AS started_at, attempt_duration_ms AS duration_ms FROM logged WHERE attempt_started_at IS NOT NULL
     UNION ALL
     -- A lookup by key per delivery (the LIMIT, which cuts nothing, keeps the planner from
     -- hashing the whole attempts table instead, which it may when the window is large).
     SELECT a.started_at, a.duration_ms FROM retried r
     CROSS JOIN LATERAL (
       SELECT x.started_at, x.duration_ms FROM webhook_earlier_attempts x
       WHERE x.delivery_id = r.id ORDER BY x.attempt_number LIMIT r.earlier
     ) a
   ),
   latencies AS (
     SELECT floor(extract(epoch FROM started_at - $4::timestamptz) / 3600)::int AS bucket,
            percentile_disc(0.5) WITHIN GROUP (ORDER BY duration_ms) AS p50,
            percentile_disc(0.95) WITHIN GROUP (ORDER BY duration_ms) AS p95
     FROM attempts
     WHERE started_at >= $4::timestamptz AND started_at < $5::timestamptz
     GROUP BY 1
   )
   SELECT bucket, status, n, NULL::int AS p50, NULL::int AS p95 FROM outcomes
   UNION ALL
   SELECT bucket, NULL, NULL, p50, p95 FROM latencies`;

interface HealthRow {
  bucket: number;
  status: Outcome | null;
  n: number | null;
  p50: number | null;
  p95: number | null;
}

/** The hours of `window` that end with the current one, aligned on whole hours (UTC). */
function healthHours(window: HealthWindow, now: Date): { from: Date; to: Date; hours: number } {
  const hours = HEALTH_WINDOW_HOURS[window];
  const to = new Date((Math.floor(now.getTime() / HOUR_MS) + 1) * HOUR_MS);
  return { from: new Date(to.getTime() - hours * HOUR_MS), to, hours };
}

/**
 * Per hour of the window, the endpoint's deliveries created in it by what became of them
 * (pending ones too), and the median and 95th percentile duration of the attempts that started
 * in it, of deliveries created in the window.
 */
export class DeliveryHealth {
  readonly #db: Database;

  constructor(deps: { db: Database }) {
    this.#db = deps.db;
  }

  async get(userId: string, endpointId: string, query: HealthQuery = {}): Promise<DeliveryHealthData> {
    const { window } = parseInput(healthQuery, query);
    await findOwnEndpoint(this.#db.prisma, userId, endpointId, { id: true });
    const { from, to, hours } = healthHours(window, new Date());
    const rows = await this.#db.sql.query<HealthRow>(HEALTH, [
      endpointId,
      uuid7Floor(from),
      uuid7Floor(to),
      from.toISOString(),
      to.toISOString(),
    ]);
    const buckets: HealthBucket[] = Array.from({ length: hours }, (_, i) => ({
      start: new Date(from.getTime() + i * HOUR_MS),
      success: 0,
      failed: 0,
      cancelled: 0,
      pending: 0,
      p50Ms: null,
      p95Ms: null,
    }));
    for (const row of rows) {
      // Every row's hour is in the window: the statement's bounds are the window's.
      const bucket = buckets[row.bucket]!;
      if (row.status !== null) bucket[row.status] += row.n ?? 0;
      else {
        bucket.p50Ms = row.p50;
        bucket.p95Ms = row.p95;
      }
    }
    return { window, from, to, buckets };
  }
}
