import type { Database } from '../../src/db/database.ts';
import type { WebhookDelivery, WebhookDeliveryStatus } from '../../src/generated/prisma/client.ts';

/**
 * Delivery state arranged behind the engine's back. A delivery is not one row any more
 * (migration 20261130090000_delivery_queue_and_log): its event's bytes are in webhook_events,
 * it has a webhook_queue row while pending and a webhook_delivery_log row once finished, and
 * the attempts before its last one are in webhook_earlier_attempts. The views
 * webhook_deliveries and webhook_delivery_attempts (Prisma's WebhookDelivery and
 * WebhookDeliveryAttempt) show it as before, but cannot be written; these functions write the
 * tables so that the views show what a test asks for. Queue and log rows get no `created_at`:
 * as the engine's, their UUIDv7 ids carry it.
 */

export interface NewDelivery {
  endpointId: string;
  status?: WebhookDeliveryStatus;
  attempts?: number;
  /** Also the time in its UUIDv7 ids, so it sorts and is partitioned as one made then. */
  createdAt?: Date;
  eventType?: string;
  /** The envelope's `data` (default: `{}`): the body is `{id, type, timestamp, data}` of its event, as the engine writes it. */
  data?: object;
  /** Instead, the whole stored payload, as it is. */
  payload?: object;
  /** Pending only: when it is due (default: now); for a claimed one, when its lease runs out. */
  nextRetryAt?: Date;
  /** Pending only: claimed by a worker, until nextRetryAt. */
  claimToken?: string | null;
  /** Pending only: an open coalescing delivery, whose payload is its own rather than its event's. */
  coalesceKey?: string;
  /** Finished only (default: now); a success's deliveredAt. */
  finishedAt?: Date;
  /** Finished only: a pending delivery's are those of its attempt numbered `attempts` (insertAttempt). */
  errorMessage?: string | null;
  /** Finished only, as errorMessage. */
  responseCode?: number | null;
}

const PENDING_ONLY = ['nextRetryAt', 'claimToken', 'coalesceKey'] as const;
const FINISHED_ONLY = ['finishedAt', 'errorMessage', 'responseCode'] as const;

/** A table holds only what its state has: a field given to the other state would be silently lost. */
function refuseMisplaced(
  status: WebhookDeliveryStatus,
  fields: Partial<Record<(typeof PENDING_ONLY)[number] | (typeof FINISHED_ONLY)[number], unknown>>,
) {
  const misplaced = (status === 'pending' ? FINISHED_ONLY : PENDING_ONLY).filter((field) => fields[field] != null);
  if (misplaced.length > 0) throw new Error(`a ${status} delivery has no ${misplaced.join(', ')}`);
}

/** Writes a delivery (and its event) in the state given; returns it as the view shows it. */
export async function insertDelivery(db: Database, delivery: NewDelivery): Promise<WebhookDelivery> {
  const status = delivery.status ?? 'pending';
  refuseMisplaced(status, delivery);
  const createdAt = delivery.createdAt ?? new Date();
  const eventType = delivery.eventType ?? 'card.viewed';
  const [ids] = await db.sql.query<{ id: string; event_id: string }>(
    'SELECT webhook_uuid7($1::timestamptz) AS id, webhook_uuid7($1::timestamptz) AS event_id',
    [createdAt.toISOString()],
  );
  const { id, event_id: eventId } = ids!;
  const body = JSON.stringify(
    delivery.payload ?? { id: eventId, type: eventType, timestamp: createdAt.toISOString(), data: delivery.data ?? {} },
  );
  const coalescing = delivery.coalesceKey !== undefined;
  if (!coalescing) {
    await db.sql.query(
      'INSERT INTO webhook_events (id, event_type, body, created_at) VALUES ($1::uuid, $2::text, $3::text, $4::timestamptz)',
      [eventId, eventType, body, createdAt.toISOString()],
    );
  }
  if (status === 'pending') {
    await db.sql.query(
      `INSERT INTO webhook_queue (endpoint_id, delivery_id, event_id, event_type, attempts, due_at, claim_token, lease_until, coalesce_key,
                                  coalesced_payload)
       VALUES ($1::uuid, $2::uuid, $3::uuid, $4::text, $5::int, $6::timestamptz, $7::uuid, CASE WHEN $7::uuid IS NOT NULL THEN $6::timestamptz END,
               $8::text, $9::jsonb)`,
      [
        delivery.endpointId,
        id,
        eventId,
        eventType,
        delivery.attempts ?? 0,
        (delivery.nextRetryAt ?? new Date()).toISOString(),
        delivery.claimToken ?? null,
        delivery.coalesceKey ?? null,
        coalescing ? body : null,
      ],
    );
  } else {
    await db.sql.query(
      `INSERT INTO webhook_delivery_log (endpoint_id, id, event_id, event_type, status, attempts, error, response_code, finished_at)
       VALUES ($1::uuid, $2::uuid, $3::uuid, $4::text, $5::webhook_delivery_status, $6::int, $7::text, $8::int, $9::timestamptz)`,
      [
        delivery.endpointId,
        id,
        eventId,
        eventType,
        status,
        delivery.attempts ?? 0,
        delivery.errorMessage ?? null,
        delivery.responseCode ?? null,
        (delivery.finishedAt ?? new Date()).toISOString(),
      ],
    );
  }
  return db.prisma.webhookDelivery.findUniqueOrThrow({ where: { id } });
}

export interface NewAttempt {
  deliveryId: string;
  attemptNumber: number;
  startedAt?: Date;
  durationMs?: number;
  responseCode?: number | null;
  responseBody?: string | null;
  error?: string | null;
  signatureTimestamp?: bigint | null;
  bodyBytes?: number | null;
  bodySha256?: string | null;
  signedWith?: string[];
  responseDate?: Date | null;
}

/**
 * Logs an attempt of a delivery, whatever its state: as an earlier attempt, which the attempts
 * view lists beside a finished delivery's final one (none, for deliveries insertDelivery wrote).
 */
export async function insertAttempt(db: Database, attempt: NewAttempt): Promise<void> {
  await db.sql.query(
    `INSERT INTO webhook_earlier_attempts (delivery_id, attempt_number, started_at, duration_ms, response_code, response_body, error,
                                           signature_timestamp, body_bytes, body_sha256, signed_with, response_date)
     VALUES ($1::uuid, $2::int, $3::timestamptz, $4::int, $5::int, $6::text, $7::text, $8::bigint, $9::int, $10::text, $11::text[],
             $12::timestamptz)`,
    [
      attempt.deliveryId,
      attempt.attemptNumber,
      (attempt.startedAt ?? new Date()).toISOString(),
      attempt.durationMs ?? 1,
      attempt.responseCode ?? null,
      attempt.responseBody ?? null,
      attempt.error ?? null,
      attempt.signatureTimestamp?.toString() ?? null,
      attempt.bodyBytes ?? null,
      attempt.bodySha256 ?? null,
      attempt.signedWith ?? [],
      attempt.responseDate?.toISOString() ?? null,
    ],
  );
}

export type DeliveryChanges = Pick<NewDelivery, 'status' | 'attempts' | 'nextRetryAt' | 'claimToken' | 'errorMessage' | 'responseCode'>;

/**
 * Changes a delivery as an UPDATE of the old table did: the fields given replace what the view
 * shows, the others stay. A pending delivery that finishes moves from the queue to the log; a
 * finished one is not made pending again here (DeliveryQueue.makeDue does that, as a redelivery).
 * Returns it as the view shows it.
 */
export async function setDelivery(db: Database, id: string, changes: DeliveryChanges): Promise<WebhookDelivery> {
  const current = await db.prisma.webhookDelivery.findUniqueOrThrow({ where: { id } });
  const status = changes.status ?? current.status;
  refuseMisplaced(status, changes);
  const attempts = changes.attempts ?? current.attempts;
  if (current.status === 'pending' && status === 'pending') {
    const claimToken = changes.claimToken === undefined ? current.claimToken : changes.claimToken;
    await db.sql.query(
      `UPDATE webhook_queue SET attempts = $2::int, due_at = $3::timestamptz, claim_token = $4::uuid,
                                lease_until = CASE WHEN $4::uuid IS NOT NULL THEN $3::timestamptz END
       WHERE delivery_id = $1::uuid`,
      [id, attempts, (changes.nextRetryAt ?? current.nextRetryAt!).toISOString(), claimToken],
    );
  } else if (current.status === 'pending') {
    await db.sql.query(
      `WITH dequeued AS (DELETE FROM webhook_queue WHERE delivery_id = $1::uuid RETURNING *)
       INSERT INTO webhook_delivery_log (endpoint_id, id, event_id, event_type, status, attempts, error, response_code, finished_at,
                                         created_at, body)
       SELECT endpoint_id, delivery_id, event_id, event_type, $2::webhook_delivery_status, $3::int, $4::text, $5::int, now(),
              created_at, coalesced_payload::text
       FROM dequeued`,
      [id, status, attempts, valueOf(changes, current, 'errorMessage'), valueOf(changes, current, 'responseCode')],
    );
  } else if (status !== 'pending') {
    // A log row's final attempt is numbered by the row's `attempts`: it becomes an earlier attempt
    // (as the attempts view shows it), so that a new count neither renumbers nor hides it.
    await db.sql.query(
      `WITH final AS (
         INSERT INTO webhook_earlier_attempts (delivery_id, attempt_number, started_at, duration_ms, response_code, response_body, error,
                                               signature_timestamp, body_bytes, body_sha256, signed_with, response_date)
         SELECT a.delivery_id, a.attempt_number, a.started_at, a.duration_ms, a.response_code, a.response_body, a.error,
                a.signature_timestamp, a.body_bytes, a.body_sha256, a.signed_with, a.response_date
         FROM webhook_delivery_log l
         JOIN webhook_delivery_attempts a ON a.delivery_id = l.id AND a.attempt_number = l.attempts
         WHERE l.id = $1::uuid AND l.attempt_started_at IS NOT NULL
       )
       UPDATE webhook_delivery_log SET status = $2::webhook_delivery_status, attempts = $3::int, error = $4::text, response_code = $5::int,
                                       finished_at = $6::timestamptz, attempt_started_at = NULL, attempt_duration_ms = NULL,
                                       response_body = NULL, signature_timestamp = NULL, body_bytes = NULL, body_sha256 = NULL,
                                       signed_with = NULL, response_date = NULL
       WHERE id = $1::uuid`,
      [
        id,
        status,
        attempts,
        valueOf(changes, current, 'errorMessage'),
        valueOf(changes, current, 'responseCode'),
        current.updatedAt.toISOString(),
      ],
    );
  } else {
    throw new Error(`delivery ${id} is ${current.status}: make it pending with DeliveryQueue.makeDue, as a redelivery does`);
  }
  return db.prisma.webhookDelivery.findUniqueOrThrow({ where: { id } });
}

/** The changed value, null included; the current one when the field is not given. */
function valueOf<K extends 'errorMessage' | 'responseCode'>(changes: DeliveryChanges, current: WebhookDelivery, key: K) {
  return changes[key] === undefined ? current[key] : changes[key];
}

/** Removes a delivery and its attempts; its event stays, as other deliveries may share it. */
export async function deleteDelivery(db: Database, id: string): Promise<void> {
  await db.sql.query(
    `WITH queued AS (DELETE FROM webhook_queue WHERE delivery_id = $1::uuid),
          logged AS (DELETE FROM webhook_delivery_log WHERE id = $1::uuid)
     DELETE FROM webhook_earlier_attempts WHERE delivery_id = $1::uuid`,
    [id],
  );
}

export interface QueueRows {
  deliveryId?: string;
  endpointId?: string;
  /** Only rows a worker holds (true), or only those nobody does (false). */
  claimed?: boolean;
}

/**
 * Lets time pass for the queue: the pending deliveries matched come due `afterMs` after the
 * database's now; a claimed one keeps its token, but its lease runs out then, as a crashed
 * worker's does. Returns them with their new due time.
 */
export async function makeDueNow(db: Database, where: QueueRows, afterMs = 0): Promise<Array<{ id: string; dueAt: Date }>> {
  return db.sql.query<{ id: string; dueAt: Date }>(
    `UPDATE webhook_queue SET due_at = now() + $4::int * interval '1 millisecond',
                              lease_until = CASE WHEN claim_token IS NOT NULL THEN now() + $4::int * interval '1 millisecond' END
     WHERE ($1::uuid IS NULL OR delivery_id = $1::uuid) AND ($2::uuid IS NULL OR endpoint_id = $2::uuid)
       AND ($3::boolean IS NULL OR (claim_token IS NOT NULL) = $3::boolean)
     RETURNING delivery_id AS id, due_at AS "dueAt"`,
    [where.deliveryId ?? null, where.endpointId ?? null, where.claimed ?? null, afterMs],
  );
}
