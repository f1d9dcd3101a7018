import type { Database } from '../../src/db/database.ts';

/**
 * Finished deliveries written as the engine leaves them (test/helpers/deliveries.ts writes a log
 * row without its final attempt): the event's bytes, a log row holding the last attempt, and the
 * attempts before it in webhook_earlier_attempts. Ids are UUIDv7 of `createdAt`, so the delivery
 * sorts, is partitioned and is bucketed as one created then.
 */

export interface PastAttempt {
  startedAt: Date;
  durationMs: number;
  responseCode: number | null;
}

export interface FinishedDelivery {
  endpointId: string;
  createdAt: Date;
  status: 'success' | 'failed' | 'cancelled';
  /** Oldest first. A success or failure ends with its final attempt; a cancelled delivery keeps all its attempts as earlier ones. */
  attempts: PastAttempt[];
  eventType?: string;
}

export interface LoggedDelivery {
  id: string;
  eventId: string;
  /** The exact bytes a receiver gets. */
  body: string;
}

const errorOf = (attempt: PastAttempt) => (attempt.responseCode === null ? 'connect ECONNREFUSED' : `HTTP ${attempt.responseCode}`);

export async function logFinished(db: Database, delivery: FinishedDelivery): Promise<LoggedDelivery> {
  const eventType = delivery.eventType ?? 'card.viewed';
  const createdAt = delivery.createdAt.toISOString();
  const [ids] = await db.sql.query<{ id: string; event_id: string }>(
    'SELECT webhook_uuid7($1::timestamptz) AS id, webhook_uuid7($1::timestamptz) AS event_id',
    [createdAt],
  );
  const { id, event_id: eventId } = ids!;
  const body = JSON.stringify({ id: eventId, type: eventType, timestamp: createdAt, data: { userId: delivery.endpointId } });
  await db.sql.query(
    'INSERT INTO webhook_events (id, event_type, body, created_at) VALUES ($1::uuid, $2::text, $3::text, $4::timestamptz)',
    [eventId, eventType, body, createdAt],
  );
  const final = delivery.status === 'cancelled' ? undefined : delivery.attempts.at(-1);
  const earlier = final ? delivery.attempts.slice(0, -1) : delivery.attempts;
  const last = delivery.attempts.at(-1);
  await db.sql.query(
    `INSERT INTO webhook_delivery_log (endpoint_id, id, event_id, event_type, status, attempts, error, finished_at,
                                       attempt_started_at, attempt_duration_ms, response_code, response_body)
     VALUES ($1::uuid, $2::uuid, $3::uuid, $4::text, $5::webhook_delivery_status, $6::int, $7::text, $8::timestamptz,
             $9::timestamptz, $10::int, $11::int, $12::text)`,
    [
      delivery.endpointId,
      id,
      eventId,
      eventType,
      delivery.status,
      delivery.attempts.length,
      delivery.status === 'success'
        ? null
        : delivery.status === 'cancelled'
          ? 'endpoint disabled before the attempt'
          : last && errorOf(last),
      final ? null : new Date(delivery.createdAt.getTime() + 1_000).toISOString(),
      final?.startedAt.toISOString() ?? null,
      final?.durationMs ?? null,
      final?.responseCode ?? null,
      final ? 'answer' : null,
    ],
  );
  for (const [index, attempt] of earlier.entries()) {
    await db.sql.query(
      `INSERT INTO webhook_earlier_attempts (delivery_id, attempt_number, started_at, duration_ms, response_code, error)
       VALUES ($1::uuid, $2::int, $3::timestamptz, $4::int, $5::int, $6::text)`,
      [id, index + 1, attempt.startedAt.toISOString(), attempt.durationMs, attempt.responseCode, errorOf(attempt)],
    );
  }
  return { id, eventId, body };
}

/** `count` attempts, the first at `createdAt`, a second apart, each answered `responseCode` after `durationMs`. */
export function attemptsFrom(createdAt: Date, count: number, responseCode: number | null = 500, durationMs = 20): PastAttempt[] {
  return Array.from({ length: count }, (_, i) => ({ startedAt: new Date(createdAt.getTime() + i * 1_000), durationMs, responseCode }));
}
