import type { SqlRunner } from '../../db/sql-runner.ts';
import type { Coalescing } from '../coalesce.ts';
import { MAX_COALESCED_VIEWERS } from '../events.ts';
import { DUE_CHANNEL } from './channels.ts';
import type { ClaimedDelivery, DispatchedRow, InsertClaim } from './types.ts';

/**
 * A subscribable event's body is rendered before its subscriber may be known (a view knows the
 * viewed username, not the owner's id): it is stored as `prefix || <subscriber id> || suffix`,
 * the id being the first field of its data (`{"data":{"userId":"…"`). See splitAtSubscriber.
 */
export interface SubscriberBody {
  prefix: string;
  suffix: string;
}

export interface FanOutParams {
  /** A UUIDv7 (ids.ts), so the event's row lands in its day's partition. */
  eventId: string;
  eventType: string;
  /** The exact bytes every non-coalesced delivery of the event signs and sends, around the subscriber's id. */
  body: SubscriberBody;
  /** The card the event is about (null: the profile): endpoints listing cards take only theirs. */
  cardId: string | null;
  notify: boolean;
  claim?: InsertClaim;
  coalesce?: Coalescing;
}

export interface InsertForSubscribersParams extends FanOutParams {
  userId: string;
}

export interface InsertForEndpointParams {
  endpointId: string;
  eventId: string;
  eventType: string;
  body: string;
  notify: boolean;
}

/** A row of the fan_out CTE: a delivery written, and what the in-process worker needs when it was written claimed. */
export interface FanOutRow {
  id: string;
  endpoint_id: string;
  user_id: string;
  due_at: Date | string;
  claim_token: string | null;
  coalescing: boolean;
  due_in_ms: number;
  revision: number | null;
  url: string | null;
  secret_encrypted: string | null;
  previous_secret_encrypted: string | null;
  previous_secret_expires_at: Date | string | null;
}

/** How many values fanOutValues gives: the fan-out's parameters are $offset+1 … $offset+FAN_OUT_PARAMS. */
export const FAN_OUT_PARAMS = 11;

const DATA_USER_ID = '"data":{"userId":"';

/** Splits a rendered body around its subscriber's id, rendered as "" (see SubscriberBody). */
export function splitAtSubscriber(body: string): SubscriberBody {
  const at = body.indexOf(DATA_USER_ID + '"');
  if (at < 0) throw new Error('a subscribable event body must start its data with userId');
  return { prefix: body.slice(0, at + DATA_USER_ID.length), suffix: body.slice(at + DATA_USER_ID.length) };
}

/**
 * The fan-out as CTEs for an event source's statement, after `subscriber`, a CTE of it that
 * yields the subscribing user as `user_id` (no row: no event). The result is the CTE `fan_out`.
 *
 * `fan_out_targets` is materialised once (it calls a volatile function), and the event's bytes
 * are stored only when some endpoint takes it. Ordinary rows are plain inserts: an `ON CONFLICT`
 * costs a WAL record per row even when nothing conflicts, so only coalescing rows go through one.
 */
export function fanOutCtes(subscriber: string, offset: number, notify: boolean): string {
  const key = `${subscriber} ${offset} ${notify}`;
  let text = fanOutTexts.get(key);
  if (text === undefined) {
    text = renderFanOutCtes(subscriber, offset, notify);
    fanOutTexts.set(key, text);
  }
  return text;
}

/**
 * A handful of texts (one per source statement), each built once: the same string every time
 * lets a view's statement be looked up rather than rebuilt and rehashed per view (database.ts
 * names statements by their text).
 */
const fanOutTexts = new Map<string, string>();

function renderFanOutCtes(subscriber: string, offset: number, notify: boolean): string {
  const $ = (n: number) => `$${offset + n}`;
  const notifyColumn = (condition: string) => (notify ? `, CASE WHEN ${condition} THEN pg_notify('${DUE_CHANNEL}', '') END` : '');
  const viewers = `q.coalesced_payload #> '{data,viewers}'`;
  return `fan_out_targets AS MATERIALIZED (
       SELECT s.user_id, e.id AS endpoint_id, webhook_uuid7() AS delivery_id,
              ${$(8)}::text IS NOT NULL AND e.coalesce_seconds > 0 AS coalescing, e.coalesce_seconds,
              ${$(5)}::uuid IS NOT NULL AND e.id <> ALL(${$(7)}::uuid[]) AND e.max_per_second IS NULL AS claimed,
              e.revision, e.url, e.secret_encrypted, e.previous_secret_encrypted, e.previous_secret_expires_at
       FROM ${subscriber} s
       JOIN webhook_endpoints e ON e.user_id = s.user_id
       WHERE e.is_active AND ${$(2)}::text = ANY(e.events)
         -- An endpoint listing cards takes only their events; a profile event (no card) only goes where none are listed.
         AND (coalesce(cardinality(e.card_ids), 0) = 0 OR ${$(11)}::uuid = ANY(e.card_ids))
     ),
     fan_out_event AS (
       INSERT INTO webhook_events (id, event_type, body)
       SELECT ${$(1)}::uuid, ${$(2)}::text, ${$(3)}::text || s.user_id::text || ${$(4)}::text
       FROM ${subscriber} s WHERE EXISTS (SELECT 1 FROM fan_out_targets)
     ),
     fan_out_direct AS (
       INSERT INTO webhook_queue (endpoint_id, delivery_id, event_id, event_type, due_at, claim_token, lease_until)
       SELECT t.endpoint_id, t.delivery_id, ${$(1)}::uuid, ${$(2)}::text, coalesce(l.lease_until, now()),
              CASE WHEN t.claimed THEN ${$(5)}::uuid END, l.lease_until
       FROM fan_out_targets t
       -- A row written claimed is due when its lease runs out, not now: claims scan the due rows
       -- by due_at, and would otherwise read every held row to skip it.
       CROSS JOIN LATERAL (SELECT CASE WHEN t.claimed THEN now() + ${$(6)}::int * interval '1 millisecond' END AS lease_until) l
       WHERE NOT t.coalescing
       RETURNING endpoint_id, delivery_id AS id, due_at, claim_token, false AS coalescing${notifyColumn('true')}
     ),
     fan_out_coalesced AS (
       INSERT INTO webhook_queue AS q (endpoint_id, delivery_id, event_id, event_type, due_at, coalesce_key, coalesced_payload)
       SELECT t.endpoint_id, t.delivery_id, ${$(1)}::uuid, ${$(2)}::text, now() + t.coalesce_seconds * interval '1 second', ${$(8)}::text,
              jsonb_set(${$(9)}::jsonb, '{data,userId}', to_jsonb(t.user_id::text))
       FROM fan_out_targets t WHERE t.coalescing
       ON CONFLICT (endpoint_id, coalesce_key) WHERE coalesce_key IS NOT NULL DO UPDATE SET
         coalesced_payload = jsonb_set(q.coalesced_payload, '{data}', (q.coalesced_payload -> 'data') || jsonb_build_object(
           'count', (q.coalesced_payload #>> '{data,count}')::int + (EXCLUDED.coalesced_payload #>> '{data,count}')::int,
           'firstViewedAt', CASE
             WHEN (EXCLUDED.coalesced_payload #>> '{data,firstViewedAt}')::timestamptz < (q.coalesced_payload #>> '{data,firstViewedAt}')::timestamptz
             THEN EXCLUDED.coalesced_payload #> '{data,firstViewedAt}' ELSE q.coalesced_payload #> '{data,firstViewedAt}' END,
           'lastViewedAt', CASE
             WHEN (EXCLUDED.coalesced_payload #>> '{data,lastViewedAt}')::timestamptz > (q.coalesced_payload #>> '{data,lastViewedAt}')::timestamptz
             THEN EXCLUDED.coalesced_payload #> '{data,lastViewedAt}' ELSE q.coalesced_payload #> '{data,lastViewedAt}' END,
           -- The new view lists at most its own viewer (none when anonymous).
           'viewers', CASE
             WHEN jsonb_array_length(${viewers}) < ${$(10)}::int
              AND NOT ${viewers} @> jsonb_build_array(jsonb_build_object('id', EXCLUDED.coalesced_payload #> '{data,viewers,0,id}'))
             THEN ${viewers} || (EXCLUDED.coalesced_payload #> '{data,viewers}') ELSE ${viewers} END))
       -- Only a new row notifies: a fold changes nothing a worker waits for.
       RETURNING endpoint_id, delivery_id AS id, due_at, claim_token, true AS coalescing${notifyColumn(`coalesced_payload #>> '{data,count}' = '1'`)}
     ),
     fan_out AS (
       SELECT w.id, w.endpoint_id, t.user_id, w.due_at, w.claim_token, w.coalescing,
              greatest(0, ceil(extract(epoch FROM (w.due_at - now())) * 1000))::int AS due_in_ms,
              CASE WHEN w.claim_token IS NOT NULL THEN t.revision END AS revision,
              CASE WHEN w.claim_token IS NOT NULL THEN t.url END AS url,
              CASE WHEN w.claim_token IS NOT NULL THEN t.secret_encrypted END AS secret_encrypted,
              CASE WHEN w.claim_token IS NOT NULL THEN t.previous_secret_encrypted END AS previous_secret_encrypted,
              CASE WHEN w.claim_token IS NOT NULL THEN t.previous_secret_expires_at END AS previous_secret_expires_at
       FROM (SELECT endpoint_id, id, due_at, claim_token, coalescing FROM fan_out_direct
             UNION ALL SELECT endpoint_id, id, due_at, claim_token, coalescing FROM fan_out_coalesced) w
       JOIN fan_out_targets t ON t.endpoint_id = w.endpoint_id
     )`;
}

/** The values of fanOutCtes' parameters, in order. */
export function fanOutValues(params: FanOutParams): unknown[] {
  const { claim, coalesce } = params;
  return [
    params.eventId,
    params.eventType,
    params.body.prefix,
    params.body.suffix,
    claim?.token ?? null,
    Math.round(claim?.leaseMs ?? 0),
    claim?.saturated ?? [],
    coalesce?.key ?? null,
    coalesce ? JSON.stringify(coalesce.payload) : null,
    MAX_COALESCED_VIEWERS,
    params.cardId,
  ];
}

const standalone = (notify: boolean) =>
  `WITH fan_out_subscriber AS (SELECT $${FAN_OUT_PARAMS + 1}::uuid AS user_id),
     ${fanOutCtes('fan_out_subscriber', 0, notify)}
   SELECT * FROM fan_out`;
const FAN_OUT = standalone(false);
const FAN_OUT_NOTIFY = standalone(true);

/**
 * Fans one event out to every active endpoint of `userId` subscribed to `eventType`, in one
 * statement: the event's bytes once, and one queue row per endpoint. `notify` also signals
 * worker processes listening on DUE_CHANNEL (PostgreSQL collapses the identical per-row
 * notifications into one at commit). An event source that knows its subscriber only in its own
 * statement puts fanOutCtes there instead (DeliveryDispatcher.composeEvent).
 *
 * With `claim` (an in-process worker with room), the rows are written already claimed by it
 * — token stamped, leased, exactly as a claim leaves them — except for the endpoints in
 * `claim.saturated`, whose rows stay unclaimed for any worker, and for paced endpoints
 * (`max_per_second`), whose rows only a claim may take, when their turn comes (pacing.ts). The claimed rows come back with
 * what the worker needs to send them, so a dispatch costs one statement instead of an insert
 * and then a claim.
 *
 * With `coalesce` (a `card.viewed`), endpoints with `coalesce_seconds` > 0 get a coalescing
 * row instead: never claimed here, due a window after the view that opens it, holding
 * `coalesce.key` while open. A view whose key is already open for the endpoint folds into
 * that row (ON CONFLICT on the partial unique index): count + 1, earliest and latest view
 * time, and its viewer appended unless listed already or the list is full. The row lock of
 * the upsert makes concurrent views fold one after another, and the claim clears the key in
 * the same statement that takes the row, so a view either joins a delivery not yet claimed
 * or opens the next one.
 */
export async function insertForSubscribers(sql: SqlRunner, params: InsertForSubscribersParams): Promise<DispatchedRow[]> {
  const rows = await sql.query<FanOutRow>(params.notify ? FAN_OUT_NOTIFY : FAN_OUT, [...fanOutValues(params), params.userId]);
  return toDispatchedRows(rows, params);
}

/** The fan_out rows, read back as a statement's rows or as JSON, as the dispatcher and the worker use them. */
export function toDispatchedRows(rows: readonly FanOutRow[], params: FanOutParams): DispatchedRow[] {
  return rows.map((row) => {
    const dispatched: DispatchedRow = { id: row.id, endpointId: row.endpoint_id, nextRetryAt: new Date(row.due_at) };
    if (row.coalescing) return { ...dispatched, coalescingDueInMs: row.due_in_ms };
    if (row.claim_token === null || row.revision === null || row.url === null || row.secret_encrypted === null) return dispatched;
    const claimed: ClaimedDelivery = {
      id: row.id,
      endpointId: row.endpoint_id,
      eventId: params.eventId,
      eventType: params.eventType,
      body: params.body.prefix + row.user_id + params.body.suffix,
      coalesced: false,
      attempts: 0,
      claimToken: row.claim_token,
      revision: row.revision,
      url: row.url,
      secretEncrypted: row.secret_encrypted,
      previousSecretEncrypted: row.previous_secret_encrypted,
      previousSecretExpiresAt: row.previous_secret_expires_at === null ? null : new Date(row.previous_secret_expires_at),
    };
    return { ...dispatched, claimed };
  });
}

function insertForEndpointStatement(notify: boolean): string {
  return `WITH target AS (
       SELECT e.id AS endpoint_id, webhook_uuid7() AS delivery_id FROM webhook_endpoints e WHERE e.id = $1::uuid AND e.is_active
     ),
     event AS (
       INSERT INTO webhook_events (id, event_type, body) SELECT $2::uuid, $3::text, $4::text FROM target
     )
     INSERT INTO webhook_queue (endpoint_id, delivery_id, event_id, event_type, due_at)
     SELECT t.endpoint_id, t.delivery_id, $2::uuid, $3::text, now() FROM target t
     RETURNING delivery_id AS id, endpoint_id, due_at${notify ? `, pg_notify('${DUE_CHANNEL}', '')` : ''}`;
}

const INSERT_FOR_ENDPOINT = insertForEndpointStatement(false);
const INSERT_FOR_ENDPOINT_NOTIFY = insertForEndpointStatement(true);

/** One delivery of an event to one active endpoint, whatever it subscribes to (test events). */
export async function insertForEndpoint(sql: SqlRunner, params: InsertForEndpointParams): Promise<DispatchedRow | undefined> {
  const rows = await sql.query<{ id: string; endpoint_id: string; due_at: Date }>(
    params.notify ? INSERT_FOR_ENDPOINT_NOTIFY : INSERT_FOR_ENDPOINT,
    [params.endpointId, params.eventId, params.eventType, params.body],
  );
  return rows[0] && toDispatchedRow(rows[0]);
}

function toDispatchedRow(row: { id: string; endpoint_id: string; due_at: Date }): DispatchedRow {
  return { id: row.id, endpointId: row.endpoint_id, nextRetryAt: row.due_at };
}
