import type { SqlRunner } from '../../db/sql-runner.ts';
import type { Coalescing } from '../coalesce.ts';
import { MAX_COALESCED_VIEWERS } from '../events.ts';
import { DUE_CHANNEL } from './channels.ts';
import type { ClaimedDelivery, DispatchedRow, InsertClaim } from './types.ts';

export interface InsertForSubscribersParams {
  userId: string;
  eventId: string;
  eventType: string;
  payload: unknown;
  notify: boolean;
  claim?: InsertClaim;
  coalesce?: Coalescing;
}

export interface InsertForEndpointParams {
  endpointId: string;
  eventId: string;
  eventType: string;
  payload: unknown;
  notify: boolean;
}

interface RawDispatchedRow {
  id: string;
  endpoint_id: string;
  next_retry_at: Date;
  claim_token: string | null;
  coalescing: boolean;
  due_in_ms: number;
  revision: number | null;
  url: string | null;
  secret_encrypted: string | null;
  previous_secret_encrypted: string | null;
  previous_secret_expires_at: Date | null;
}

/**
 * Fans one event out to every active endpoint of `userId` subscribed to `eventType`, in one
 * statement. `notify` also signals worker processes listening on DUE_CHANNEL (PostgreSQL
 * collapses the identical per-row notifications into one at commit).
 *
 * With `claim` (an in-process worker with room), the rows are written already claimed by it
 * — token stamped, due again only when the lease runs out, exactly as a claim leaves them —
 * except for the endpoints in `claim.saturated`, whose rows stay unclaimed for any worker.
 * The claimed rows come back with what the worker needs to send them, so a dispatch costs
 * one statement instead of an insert and then a claim.
 *
 * With `coalesce` (a `card.viewed`), endpoints with `coalesce_seconds` > 0 get a coalescing
 * row instead: never claimed here, due a window after the view that opens it, holding
 * `coalesce.key` while open. A view whose key is already open for the endpoint folds into
 * that row (ON CONFLICT on the partial unique index): count + 1, earliest and latest view
 * time, and its viewer appended unless listed already or the list is full. The row lock of
 * the upsert makes concurrent views fold one after another, and the claim clears the key in
 * the same statement that takes the row, so a view either joins a delivery not yet claimed
 * or opens the next one. Only a new row notifies: a fold changes nothing a worker waits for.
 */
export async function insertForSubscribers(sql: SqlRunner, params: InsertForSubscribersParams): Promise<DispatchedRow[]> {
  const { claim, coalesce } = params;
  const viewers = `d.payload #> '{data,viewers}'`;
  const rows = await sql.query<RawDispatchedRow>(
    `WITH inserted AS (
       INSERT INTO webhook_deliveries AS d (id, endpoint_id, event_id, event_type, payload, status, next_retry_at, claim_token, coalesce_key, created_at, updated_at)
       SELECT gen_random_uuid(), e.id, $2::uuid, $3::text,
              CASE WHEN c.coalescing THEN $9::jsonb ELSE $4::jsonb END,
              'pending',
              CASE WHEN c.coalescing THEN now() + e.coalesce_seconds * interval '1 second'
                   WHEN $5::uuid IS NULL OR e.id = ANY($7::uuid[]) THEN now()
                   ELSE now() + $6::int * interval '1 millisecond' END,
              CASE WHEN c.coalescing OR e.id = ANY($7::uuid[]) THEN NULL ELSE $5::uuid END,
              CASE WHEN c.coalescing THEN $8::text END,
              now(), now()
       FROM webhook_endpoints e
       CROSS JOIN LATERAL (SELECT $8::text IS NOT NULL AND e.coalesce_seconds > 0 AS coalescing) c
       WHERE e.user_id = $1::uuid AND e.is_active AND $3::text = ANY(e.events)
       ON CONFLICT (endpoint_id, coalesce_key) WHERE coalesce_key IS NOT NULL DO UPDATE SET
         payload = jsonb_set(d.payload, '{data}', (d.payload -> 'data') || jsonb_build_object(
           'count', (d.payload #>> '{data,count}')::int + (EXCLUDED.payload #>> '{data,count}')::int,
           'firstViewedAt', CASE
             WHEN (EXCLUDED.payload #>> '{data,firstViewedAt}')::timestamptz < (d.payload #>> '{data,firstViewedAt}')::timestamptz
             THEN EXCLUDED.payload #> '{data,firstViewedAt}' ELSE d.payload #> '{data,firstViewedAt}' END,
           'lastViewedAt', CASE
             WHEN (EXCLUDED.payload #>> '{data,lastViewedAt}')::timestamptz > (d.payload #>> '{data,lastViewedAt}')::timestamptz
             THEN EXCLUDED.payload #> '{data,lastViewedAt}' ELSE d.payload #> '{data,lastViewedAt}' END,
           -- The new view lists at most its own viewer (none when anonymous).
           'viewers', CASE
             WHEN jsonb_array_length(${viewers}) < $10::int
              AND NOT ${viewers} @> jsonb_build_array(jsonb_build_object('id', EXCLUDED.payload #> '{data,viewers,0,id}'))
             THEN ${viewers} || (EXCLUDED.payload #> '{data,viewers}') ELSE ${viewers} END)),
         updated_at = now()
       RETURNING id, endpoint_id, next_retry_at, claim_token, coalesce_key IS NOT NULL AS coalescing,
                 greatest(0, ceil(extract(epoch FROM (next_retry_at - now())) * 1000))::int AS due_in_ms${
                   params.notify
                     ? `, CASE WHEN coalesce_key IS NULL OR payload #>> '{data,count}' = '1' THEN pg_notify('${DUE_CHANNEL}', '') END`
                     : ''
                 }
     )
     SELECT i.id, i.endpoint_id, i.next_retry_at, i.claim_token, i.coalescing, i.due_in_ms,
            e.revision, e.url, e.secret_encrypted, e.previous_secret_encrypted, e.previous_secret_expires_at
     FROM inserted i LEFT JOIN webhook_endpoints e ON e.id = i.endpoint_id AND i.claim_token IS NOT NULL`,
    [
      params.userId,
      params.eventId,
      params.eventType,
      JSON.stringify(params.payload),
      claim?.token ?? null,
      Math.round(claim?.leaseMs ?? 0),
      claim?.saturated ?? [],
      coalesce?.key ?? null,
      coalesce ? JSON.stringify(coalesce.payload) : null,
      MAX_COALESCED_VIEWERS,
    ],
  );
  return rows.map((row) => {
    const dispatched = toDispatchedRow(row);
    if (row.coalescing) return { ...dispatched, coalescingDueInMs: row.due_in_ms };
    if (row.claim_token === null || row.revision === null || row.url === null || row.secret_encrypted === null) return dispatched;
    const claimed: ClaimedDelivery = {
      id: row.id,
      endpointId: row.endpoint_id,
      eventId: params.eventId,
      eventType: params.eventType,
      payload: params.payload,
      attempts: 0,
      claimToken: row.claim_token,
      revision: row.revision,
      url: row.url,
      secretEncrypted: row.secret_encrypted,
      previousSecretEncrypted: row.previous_secret_encrypted,
      previousSecretExpiresAt: row.previous_secret_expires_at,
    };
    return { ...dispatched, claimed };
  });
}

/** One delivery of an event to one active endpoint, whatever it subscribes to (test events). */
export async function insertForEndpoint(sql: SqlRunner, params: InsertForEndpointParams): Promise<DispatchedRow | undefined> {
  const rows = await sql.query<{ id: string; endpoint_id: string; next_retry_at: Date }>(
    `INSERT INTO webhook_deliveries (id, endpoint_id, event_id, event_type, payload, status, next_retry_at, created_at, updated_at)
     SELECT gen_random_uuid(), e.id, $2::uuid, $3::text, $4::jsonb, 'pending', now(), now(), now()
     FROM webhook_endpoints e
     WHERE e.id = $1::uuid AND e.is_active
     RETURNING id, endpoint_id, next_retry_at${params.notify ? `, pg_notify('${DUE_CHANNEL}', '')` : ''}`,
    [params.endpointId, params.eventId, params.eventType, JSON.stringify(params.payload)],
  );
  return rows[0] && toDispatchedRow(rows[0]);
}

function toDispatchedRow(row: { id: string; endpoint_id: string; next_retry_at: Date }): DispatchedRow {
  return { id: row.id, endpointId: row.endpoint_id, nextRetryAt: row.next_retry_at };
}
