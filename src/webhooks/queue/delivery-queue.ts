/**
 * The delivery queue: every raw SQL statement of the engine, in one place.
 *
 * Why raw SQL: the `webhook_deliveries` row IS the queue (`status` + `next_retry_at`), and
 * what the engine needs from it — a fan-out `INSERT … SELECT`, claims with
 * `FOR UPDATE SKIP LOCKED`, per-endpoint fairness with a window function, and many attempt
 * results applied in one statement — is beyond what Prisma can express. Each function is one
 * statement (one round trip, atomic on its own), written for both stores: PostgreSQL and the
 * embedded PGlite (which has a single connection, so nothing here holds a transaction open).
 *
 * Claim protocol: a claim stamps `claim_token` and moves `next_retry_at` one lease into the
 * future, so a worker that dies mid-attempt leaves rows that simply come due again. Writing a
 * result requires the token to still match: a lease that expired and was reclaimed by another
 * worker is never overwritten by the late one.
 *
 * Coalescing: `coalesce_key` marks a delivery still open to more views (see
 * insertForSubscribers), so only a pending row nobody has claimed may hold one; every statement
 * here that claims or cancels a row clears it (cancelPendingDeliveries in endpoints.ts too).
 */
import { randomUUID } from 'node:crypto';
import type { SqlRunner } from '../../db/migrate.ts';
import type { OutcomeKind } from '../delivery/attempt-outcome.ts';
import { GONE_DISABLED_REASON } from '../delivery/attempt-outcome.ts';
import type { Coalescing } from '../coalesce.ts';
import { MAX_COALESCED_VIEWERS } from '../events.ts';
import { AUTO_DISABLE_AFTER_CONSECUTIVE_FAILURES } from '../delivery/retry-policy.ts';

/** A delivery claimed for one attempt, with what is needed to send it. */
export interface ClaimedDelivery {
  id: string;
  endpointId: string;
  eventId: string;
  eventType: string;
  /** The stored envelope (JSONB; key order is not preserved, see envelope.ts). */
  payload: unknown;
  /** Attempts made before this one. */
  attempts: number;
  claimToken: string;
  /** The endpoint's configuration as the claim read it, at `revision` (endpoint-configs.ts decides whether it still holds). */
  revision: number;
  url: string;
  secretEncrypted: string;
  previousSecretEncrypted: string | null;
  previousSecretExpiresAt: Date | null;
}

/** An endpoint's sending configuration as stored now (readEndpoint). */
export interface StoredEndpointConfig {
  revision: number;
  isActive: boolean;
  url: string;
  secretEncrypted: string;
  previousSecretEncrypted: string | null;
  previousSecretExpiresAt: Date | null;
}

export interface ClaimOptions {
  /** At most this many rows (the worker's free global capacity). */
  limit: number;
  leaseMs: number;
  /** Per-endpoint in-flight cap, including what `inFlightByEndpoint` already holds. */
  perEndpointLimit: number;
  /** Attempts this worker has in flight, per endpoint. */
  inFlightByEndpoint: ReadonlyMap<string, number>;
}

export interface ClaimResult {
  deliveries: ClaimedDelivery[];
  /** Due rows of disabled endpoints found on the way; they were cancelled, never sent. */
  cancelled: number;
  /** True when due rows may remain that this claim did not take (capacity, window, other workers). */
  mayHaveMore: boolean;
}

/** What one attempt signed, as sent: kept on its attempt row for the signature debugger. */
export interface SignedParts {
  /** The unix seconds sent in webhook-timestamp. */
  timestamp: number;
  bodyBytes: number;
  /** Hex sha256 of the body bytes. */
  bodySha256: string;
  /** Fingerprints of the signing secrets, current first (EndpointKeyCache). */
  fingerprints: readonly string[];
}

export interface AttemptRecord {
  deliveryId: string;
  claimToken: string;
  startedAt: Date;
  durationMs: number;
  responseCode: number | null;
  responseBody: string | null;
  error: string | null;
  outcome: OutcomeKind;
  /** For `retry`: due again this long after the write. */
  delayMs: number | null;
  /** Null when the attempt could not be signed. */
  signed: SignedParts | null;
  /** The receiver's Date header, if it sent one. */
  responseDate: Date | null;
}

export interface AppliedAttempt {
  deliveryId: string;
  endpointId: string;
  outcome: OutcomeKind;
  attemptNumber: number;
  /** Set when the endpoint is (now) disabled. */
  endpointDisabledReason: string | null;
}

export interface DispatchedRow {
  id: string;
  endpointId: string;
  nextRetryAt: Date;
  /** Set when the row was written already claimed for the in-process worker (see insertForSubscribers). */
  claimed?: ClaimedDelivery;
  /** Set when the row is an open coalescing delivery: due in this many milliseconds (database clock). */
  coalescingDueInMs?: number;
}

/** A claim the in-process worker lets a dispatch stamp on the rows it writes. */
export interface InsertClaim {
  token: string;
  leaseMs: number;
  /** Endpoints this worker already holds its claim-ahead share of: their rows are left unclaimed. */
  saturated: string[];
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

/** How far past the claim limit a claim looks, so one endpoint's backlog cannot hide the others'. */
const CLAIM_SCAN_FACTOR = 2;
const CLAIM_SCAN_MIN = 64;
/** Channel for LISTEN/NOTIFY between an API process and worker processes (PostgreSQL). */
export const DUE_CHANNEL = 'webhook_deliveries_due';
/**
 * Channel on which every change of an endpoint's url, secrets or isActive (and its deletion) is
 * announced, payload the endpoint id, in the transaction that makes it: workers in other
 * processes stop using what they hold of it (endpoint-configs.ts).
 */
export const ENDPOINT_CHANGED_CHANNEL = 'webhook_endpoint_changed';
const CANCELLED_DISABLED = 'endpoint disabled before the attempt';

interface RawClaimRow {
  scanned: number;
  cancelled: number;
  id: string | null;
  endpoint_id: string;
  event_id: string;
  event_type: string;
  payload: unknown;
  attempts: number;
  revision: number;
  url: string;
  secret_encrypted: string;
  previous_secret_encrypted: string | null;
  previous_secret_expires_at: Date | null;
}

export class DeliveryQueue {
  readonly #sql: SqlRunner;

  constructor(sql: SqlRunner) {
    this.#sql = sql;
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
  async insertForSubscribers(params: {
    userId: string;
    eventId: string;
    eventType: string;
    payload: unknown;
    notify: boolean;
    claim?: InsertClaim;
    coalesce?: Coalescing;
  }): Promise<DispatchedRow[]> {
    const { claim, coalesce } = params;
    const viewers = `d.payload #> '{data,viewers}'`;
    const rows = await this.#sql.query<RawDispatchedRow>(
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
                     params.notify ? `, CASE WHEN coalesce_key IS NULL OR payload #>> '{data,count}' = '1' THEN pg_notify('${DUE_CHANNEL}', '') END` : ''
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
  async insertForEndpoint(params: {
    endpointId: string;
    eventId: string;
    eventType: string;
    payload: unknown;
    notify: boolean;
  }): Promise<DispatchedRow | undefined> {
    const rows = await this.#sql.query<{ id: string; endpoint_id: string; next_retry_at: Date }>(
      `INSERT INTO webhook_deliveries (id, endpoint_id, event_id, event_type, payload, status, next_retry_at, created_at, updated_at)
       SELECT gen_random_uuid(), e.id, $2::uuid, $3::text, $4::jsonb, 'pending', now(), now(), now()
       FROM webhook_endpoints e
       WHERE e.id = $1::uuid AND e.is_active
       RETURNING id, endpoint_id, next_retry_at${params.notify ? `, pg_notify('${DUE_CHANNEL}', '')` : ''}`,
      [params.endpointId, params.eventId, params.eventType, JSON.stringify(params.payload)],
    );
    return rows[0] && toDispatchedRow(rows[0]);
  }

  /** Claims due deliveries, oldest first, within the worker's global and per-endpoint capacity. */
  claimDueDeliveries(options: ClaimOptions): Promise<ClaimResult> {
    return this.#claim(options, undefined);
  }

  /** The same claim restricted to `ids` (rows just dispatched): taken only if still pending and due. */
  claimDeliveries(ids: readonly string[], options: ClaimOptions): Promise<ClaimResult> {
    return this.#claim(options, ids);
  }

  async #claim(options: ClaimOptions, ids: readonly string[] | undefined): Promise<ClaimResult> {
    const limit = Math.max(0, Math.floor(options.limit));
    if (limit === 0 || (ids && ids.length === 0)) return { deliveries: [], cancelled: 0, mayHaveMore: limit === 0 };
    const token = randomUUID();
    const claim = claimStatement(options, ids, token);
    const rows = await this.#sql.query<RawClaimRow>(claim.text, claim.params);
    const summary = rows[0] ?? { scanned: 0, cancelled: 0 };
    const deliveries: ClaimedDelivery[] = [];
    for (const row of rows) {
      if (row.id === null) continue;
      deliveries.push({
        id: row.id,
        endpointId: row.endpoint_id,
        eventId: row.event_id,
        eventType: row.event_type,
        payload: row.payload,
        attempts: row.attempts,
        claimToken: token,
        revision: row.revision,
        url: row.url,
        secretEncrypted: row.secret_encrypted,
        previousSecretEncrypted: row.previous_secret_encrypted,
        previousSecretExpiresAt: row.previous_secret_expires_at,
      });
    }
    const untouched = summary.scanned - deliveries.length - summary.cancelled;
    return {
      deliveries,
      cancelled: summary.cancelled,
      mayHaveMore: untouched > 0 || (!ids && summary.scanned >= claim.scan) || claim.saturated,
    };
  }

  /**
   * Applies attempt results in ONE statement: logs each attempt, moves each delivery on
   * (success → delivered; retry → pending, due after its delay; failed/gone → failed), and
   * updates each endpoint's consecutive-failure count in result order (a success resets it, a
   * delivery that ends failed adds one). An endpoint reaching
   * AUTO_DISABLE_AFTER_CONSECUTIVE_FAILURES, or answering 410, is disabled and its waiting
   * deliveries are cancelled. Results whose claim token no longer matches are ignored.
   */
  async completeAttempts(records: readonly AttemptRecord[]): Promise<AppliedAttempt[]> {
    if (records.length === 0) return [];
    const input = records.map((r, ord) => ({
      ord,
      delivery_id: r.deliveryId,
      claim_token: r.claimToken,
      started_at: r.startedAt.toISOString(),
      duration_ms: Math.round(r.durationMs),
      response_code: r.responseCode,
      response_body: r.responseBody,
      error: r.error,
      outcome: r.outcome,
      delay_ms: r.delayMs === null ? null : Math.round(r.delayMs),
      signature_timestamp: r.signed?.timestamp ?? null,
      body_bytes: r.signed?.bodyBytes ?? null,
      body_sha256: r.signed?.bodySha256 ?? null,
      signed_with: r.signed?.fingerprints ?? [],
      response_date: r.responseDate?.toISOString() ?? null,
    }));
    const rows = await this.#sql.query<{
      id: string;
      endpoint_id: string;
      outcome: OutcomeKind;
      attempts: number;
      endpoint_active: boolean | null;
      disabled_reason: string | null;
    }>(
      `WITH input AS (
         SELECT * FROM jsonb_to_recordset($1::jsonb) AS i(
           ord int, delivery_id uuid, claim_token uuid, started_at timestamptz, duration_ms int,
           response_code int, response_body text, error text, outcome text, delay_ms int,
           signature_timestamp bigint, body_bytes int, body_sha256 text, signed_with text[], response_date timestamptz)
       ),
       updated AS (
         UPDATE webhook_deliveries d SET
           status = (CASE i.outcome WHEN 'success' THEN 'success' WHEN 'retry' THEN 'pending' ELSE 'failed' END)::webhook_delivery_status,
           attempts = d.attempts + 1,
           response_code = i.response_code,
           error_message = i.error,
           delivered_at = CASE WHEN i.outcome = 'success' THEN now() ELSE d.delivered_at END,
           next_retry_at = CASE WHEN i.outcome = 'retry' THEN now() + i.delay_ms * interval '1 millisecond' END,
           claim_token = NULL,
           updated_at = now()
         FROM input i
         WHERE d.id = ANY($4::uuid[]) AND d.id = i.delivery_id AND d.claim_token = i.claim_token AND d.status = 'pending'
         RETURNING d.id, d.endpoint_id, d.attempts, i.ord, i.outcome
       ),
       logged AS (
         INSERT INTO webhook_delivery_attempts (id, delivery_id, attempt_number, started_at, duration_ms, response_code, response_body, error,
                                                signature_timestamp, body_bytes, body_sha256, signed_with, response_date)
         SELECT gen_random_uuid(), u.id, u.attempts, i.started_at, i.duration_ms, i.response_code, i.response_body, i.error,
                i.signature_timestamp, i.body_bytes, i.body_sha256, i.signed_with, i.response_date
         FROM updated u JOIN input i ON i.delivery_id = u.id
       ),
       stats AS (
         SELECT u.endpoint_id,
                bool_or(u.outcome = 'gone') AS gone,
                max(u.ord) FILTER (WHERE u.outcome = 'success') AS last_success
         FROM updated u
         GROUP BY u.endpoint_id
       ),
       delta AS (
         SELECT s.endpoint_id, s.gone, s.last_success IS NOT NULL AS reset, e.is_active AS was_active,
                (SELECT count(*) FROM updated u
                 WHERE u.endpoint_id = s.endpoint_id AND u.outcome = 'failed' AND u.ord > coalesce(s.last_success, -1))::int AS failures
         FROM stats s JOIN webhook_endpoints e ON e.id = s.endpoint_id
       ),
       endpoints AS (
         UPDATE webhook_endpoints e SET
           consecutive_failures = CASE WHEN x.reset THEN x.failures ELSE e.consecutive_failures + x.failures END,
           is_active = e.is_active AND NOT x.gone
             AND (CASE WHEN x.reset THEN x.failures ELSE e.consecutive_failures + x.failures END) < $2::int,
           disabled_at = CASE
             WHEN e.is_active AND (x.gone OR (CASE WHEN x.reset THEN x.failures ELSE e.consecutive_failures + x.failures END) >= $2::int)
             THEN now() ELSE e.disabled_at END,
           revision = CASE
             WHEN e.is_active AND (x.gone OR (CASE WHEN x.reset THEN x.failures ELSE e.consecutive_failures + x.failures END) >= $2::int)
             THEN e.revision + 1 ELSE e.revision END,
           disabled_reason = CASE
             WHEN NOT e.is_active THEN e.disabled_reason
             WHEN x.gone THEN $3::text
             WHEN (CASE WHEN x.reset THEN x.failures ELSE e.consecutive_failures + x.failures END) >= $2::int
             THEN format('%s consecutive deliveries failed', CASE WHEN x.reset THEN x.failures ELSE e.consecutive_failures + x.failures END)
             ELSE e.disabled_reason END,
           updated_at = now()
         FROM delta x
         WHERE e.id = x.endpoint_id AND (x.gone OR x.failures > 0 OR e.consecutive_failures <> 0)
         -- A disable is announced to workers in other processes (ENDPOINT_CHANGED_CHANNEL).
         RETURNING e.id, e.is_active, e.disabled_reason,
                   CASE WHEN x.was_active AND NOT e.is_active THEN pg_notify('${ENDPOINT_CHANGED_CHANNEL}', e.id::text) END AS announced
       ),
       cancelled AS (
         -- Rows written by \`updated\` are left out (one statement must not update a row twice);
         -- a claim cancels them when they come due. Rows another worker holds finish their attempt.
         UPDATE webhook_deliveries d SET
           status = 'cancelled', next_retry_at = NULL, coalesce_key = NULL,
           error_message = 'endpoint disabled: ' || coalesce(x.disabled_reason, 'by its owner'), updated_at = now()
         FROM endpoints x
         WHERE NOT x.is_active AND d.endpoint_id = x.id AND d.status = 'pending' AND d.claim_token IS NULL
           AND d.id NOT IN (SELECT id FROM updated)
         RETURNING d.id
       )
       SELECT u.id, u.endpoint_id, u.outcome, u.attempts, x.is_active AS endpoint_active, x.disabled_reason,
              (SELECT count(*) FROM cancelled)::int AS cancelled
       FROM updated u LEFT JOIN endpoints x ON x.id = u.endpoint_id`,
      // $4 repeats the ids as an array so the planner looks rows up by primary key.
      [JSON.stringify(input), AUTO_DISABLE_AFTER_CONSECUTIVE_FAILURES, GONE_DISABLED_REASON, records.map((r) => r.deliveryId)],
    );
    return rows.map((row) => ({
      deliveryId: row.id,
      endpointId: row.endpoint_id,
      outcome: row.outcome,
      attemptNumber: row.attempts,
      endpointDisabledReason: row.endpoint_active === false ? (row.disabled_reason ?? 'disabled') : null,
    }));
  }

  /** Gives claimed, unfinished rows back (shutdown): due now, for any worker. */
  async releaseClaims(tokens: readonly string[]): Promise<number> {
    if (tokens.length === 0) return 0;
    const rows = await this.#sql.query<{ n: number }>(
      `WITH released AS (
         UPDATE webhook_deliveries SET claim_token = NULL, next_retry_at = now(), updated_at = now()
         WHERE claim_token = ANY($1::uuid[]) AND status = 'pending'
         RETURNING 1
       )
       SELECT count(*)::int AS n FROM released`,
      [tokens],
    );
    return rows[0]?.n ?? 0;
  }

  /** Gives back particular claimed rows (id and the token that claims it), due now. */
  async releaseDeliveries(claims: ReadonlyArray<{ id: string; claimToken: string }>): Promise<number> {
    if (claims.length === 0) return 0;
    const rows = await this.#sql.query<{ n: number }>(
      `WITH released AS (
         UPDATE webhook_deliveries d SET claim_token = NULL, next_retry_at = now(), updated_at = now()
         FROM unnest($1::uuid[], $2::uuid[]) AS r(id, claim_token)
         WHERE d.id = r.id AND d.claim_token = r.claim_token AND d.status = 'pending'
         RETURNING 1
       )
       SELECT count(*)::int AS n FROM released`,
      [claims.map((c) => c.id), claims.map((c) => c.claimToken)],
    );
    return rows[0]?.n ?? 0;
  }

  /** The endpoint's sending configuration now; undefined when it was deleted. */
  async readEndpoint(endpointId: string): Promise<StoredEndpointConfig | undefined> {
    const rows = await this.#sql.query<{
      revision: number;
      is_active: boolean;
      url: string;
      secret_encrypted: string;
      previous_secret_encrypted: string | null;
      previous_secret_expires_at: Date | null;
    }>(
      `SELECT revision, is_active, url, secret_encrypted, previous_secret_encrypted, previous_secret_expires_at
       FROM webhook_endpoints WHERE id = $1::uuid`,
      [endpointId],
    );
    const row = rows[0];
    return (
      row && {
        revision: row.revision,
        isActive: row.is_active,
        url: row.url,
        secretEncrypted: row.secret_encrypted,
        previousSecretEncrypted: row.previous_secret_encrypted,
        previousSecretExpiresAt: row.previous_secret_expires_at,
      }
    );
  }

  /**
   * Milliseconds until the earliest unclaimed pending delivery is due (0 if overdue), or
   * undefined when none waits. Measured by the database clock, which is the one claims use.
   */
  async nextDueInMs(): Promise<number | undefined> {
    const rows = await this.#sql.query<{ delay_ms: number | null }>(
      `SELECT greatest(0, ceil(extract(epoch FROM (next_retry_at - now())) * 1000))::int AS delay_ms
       FROM webhook_deliveries
       WHERE status = 'pending' AND claim_token IS NULL
       ORDER BY next_retry_at
       LIMIT 1`,
    );
    const delay = rows[0]?.delay_ms;
    return delay === null || delay === undefined ? undefined : delay;
  }

  /** Pending deliveries due now, claimed or not (an expired lease is due again): the backlog. */
  async countDue(): Promise<number> {
    const rows = await this.#sql.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM webhook_deliveries WHERE status = 'pending' AND next_retry_at <= now()`,
    );
    return rows[0]?.n ?? 0;
  }

  /**
   * Makes a delivery due now again (redeliver), unless an attempt of it is in flight or it has
   * had `maxAttempts` attempts already. `found` is false when there is no such row.
   *
   * Every condition is on the updated row `d`, not on a CTE's snapshot: when a claim commits
   * while this statement waits for the row lock, READ COMMITTED re-checks them on the claimed
   * version, so the claim is left alone instead of being voided under a worker that is sending
   * it. The cap is checked the same way, so concurrent redeliveries cannot pass it either.
   */
  async makeDue(
    endpointId: string,
    deliveryId: string,
    maxAttempts: number,
  ): Promise<{ found: boolean; scheduled: boolean; attemptLimitReached: boolean }> {
    const rows = await this.#sql.query<{ scheduled: boolean; attempt_limit_reached: boolean }>(
      `WITH target AS (
         SELECT id, attempts >= $3::int AS attempt_limit_reached
         FROM webhook_deliveries WHERE id = $1::uuid AND endpoint_id = $2::uuid
       ),
       changed AS (
         UPDATE webhook_deliveries d
         SET status = 'pending', next_retry_at = now(), claim_token = NULL, updated_at = now()
         WHERE d.id = $1::uuid AND d.endpoint_id = $2::uuid AND d.attempts < $3::int
           AND NOT (d.status = 'pending' AND d.claim_token IS NOT NULL AND d.next_retry_at > now())
         RETURNING d.id
       )
       SELECT EXISTS (SELECT 1 FROM changed) AS scheduled, t.attempt_limit_reached FROM target t`,
      [deliveryId, endpointId, maxAttempts],
    );
    const row = rows[0];
    return {
      found: row !== undefined,
      scheduled: row?.scheduled ?? false,
      attemptLimitReached: row !== undefined && !row.scheduled && row.attempt_limit_reached,
    };
  }

  /** Deletes finished deliveries (and their attempts) created before `olderThan`, at most `batchSize`. Returns how many. */
  async pruneDeliveries(olderThan: Date, batchSize: number): Promise<number> {
    const rows = await this.#sql.query<{ n: number }>(
      `WITH doomed AS (
         SELECT id FROM webhook_deliveries
         WHERE created_at < $1::timestamptz AND status <> 'pending'
         ORDER BY created_at
         LIMIT $2
         FOR UPDATE SKIP LOCKED
       ),
       deleted AS (
         DELETE FROM webhook_deliveries d USING doomed WHERE d.id = doomed.id RETURNING 1
       )
       SELECT count(*)::int AS n FROM deleted`,
      [olderThan.toISOString(), batchSize],
    );
    return rows[0]?.n ?? 0;
  }

  /**
   * Forgets previous secrets that stopped signing before `expiredBefore`: after that they can
   * no longer be extended (secret-overlap.ts), so their ciphertexts are not kept. Returns how many.
   */
  async forgetExpiredPreviousSecrets(expiredBefore: Date): Promise<number> {
    const rows = await this.#sql.query<{ n: number }>(
      `WITH forgotten AS (
         UPDATE webhook_endpoints
            SET previous_secret_encrypted = NULL, previous_secret_expires_at = NULL, updated_at = now()
          WHERE previous_secret_expires_at < $1::timestamptz
          RETURNING 1
       )
       SELECT count(*)::int AS n FROM forgotten`,
      [expiredBefore.toISOString()],
    );
    return rows[0]?.n ?? 0;
  }

  /**
   * Deletes finished deliveries (and their attempts) of endpoints holding more than `maxPerEndpoint`
   * rows: those ranked past the cap, newest first, at most `batchSize`. Pending rows are never
   * deleted (they still count towards the cap). Returns how many.
   */
  async pruneDeliveriesOverCap(maxPerEndpoint: number, batchSize: number): Promise<number> {
    const rows = await this.#sql.query<{ n: number }>(
      `WITH over_cap AS (
         SELECT endpoint_id FROM webhook_deliveries GROUP BY endpoint_id HAVING count(*) > $1
       ),
       excess AS (
         SELECT x.id
         FROM over_cap o
         CROSS JOIN LATERAL (
           SELECT d.id, d.status FROM webhook_deliveries d
           WHERE d.endpoint_id = o.endpoint_id
           ORDER BY d.created_at DESC, d.id DESC
           OFFSET $1
         ) x
         WHERE x.status <> 'pending'
         LIMIT $2
       ),
       doomed AS (
         SELECT id FROM webhook_deliveries
         WHERE id = ANY(ARRAY(SELECT id FROM excess)) AND status <> 'pending'
         FOR UPDATE SKIP LOCKED
       ),
       deleted AS (
         DELETE FROM webhook_deliveries d USING doomed WHERE d.id = doomed.id RETURNING 1
       )
       SELECT count(*)::int AS n FROM deleted`,
      [maxPerEndpoint, batchSize],
    );
    return rows[0]?.n ?? 0;
  }
}

/**
 * The claim statement (exported so the benchmark can EXPLAIN exactly what the worker runs).
 * `ids` restricts it to rows just dispatched; `token` is stamped on every row it claims.
 */
export function claimStatement(
  options: ClaimOptions,
  ids: readonly string[] | undefined,
  token: string,
): { text: string; params: unknown[]; scan: number; saturated: boolean } {
  const limit = Math.max(0, Math.floor(options.limit));
  const saturated: string[] = [];
  const busyIds: string[] = [];
  const busyCounts: number[] = [];
  for (const [endpointId, inFlight] of options.inFlightByEndpoint) {
    if (inFlight >= options.perEndpointLimit) saturated.push(endpointId);
    else if (inFlight > 0) {
      busyIds.push(endpointId);
      busyCounts.push(inFlight);
    }
  }
  const scan = ids ? ids.length : Math.max(limit * CLAIM_SCAN_FACTOR, CLAIM_SCAN_MIN);
  // `due` and `ranked` read without locks; `locked` then locks what was chosen, skipping rows
  // another worker holds, and re-checks status and due time on the latest row version (READ
  // COMMITTED re-evaluates the locked table's conditions), so two claimers never share a row.
  // The window function must sit in its own CTE: PostgreSQL refuses FOR UPDATE next to one.
  const text = `WITH due AS (
       SELECT d.id, d.endpoint_id, d.next_retry_at, e.is_active
       FROM webhook_deliveries d
       JOIN webhook_endpoints e ON e.id = d.endpoint_id
       WHERE d.status = 'pending' AND d.next_retry_at <= now()
         AND NOT (d.endpoint_id = ANY($1::uuid[]))
         ${ids ? 'AND d.id = ANY($9::uuid[])' : ''}
       ORDER BY d.next_retry_at
       LIMIT $2
     ),
     ranked AS (
       SELECT due.*, row_number() OVER (PARTITION BY due.endpoint_id ORDER BY due.next_retry_at, due.id) AS endpoint_rank
       FROM due
     ),
     to_claim AS (
       SELECT r.id
       FROM ranked r
       LEFT JOIN unnest($3::uuid[], $4::int[]) AS busy(endpoint_id, in_flight) ON busy.endpoint_id = r.endpoint_id
       WHERE r.is_active AND r.endpoint_rank <= $5::int - coalesce(busy.in_flight, 0)
       ORDER BY r.next_retry_at
       LIMIT $6
     ),
     to_cancel AS (
       SELECT id FROM ranked WHERE NOT is_active
     ),
     locked AS (
       SELECT d.id, d.id IN (SELECT id FROM to_cancel) AS cancel
       FROM webhook_deliveries d
       WHERE d.id = ANY(ARRAY(SELECT id FROM to_claim UNION ALL SELECT id FROM to_cancel))
         AND d.status = 'pending' AND d.next_retry_at <= now()
       FOR UPDATE SKIP LOCKED
     ),
     cancelled AS (
       UPDATE webhook_deliveries d
       SET status = 'cancelled', next_retry_at = NULL, claim_token = NULL, coalesce_key = NULL, error_message = '${CANCELLED_DISABLED}', updated_at = now()
       WHERE d.id = ANY(ARRAY(SELECT id FROM locked WHERE cancel))
       RETURNING d.id
     ),
     claimed AS (
       -- Clearing coalesce_key closes a coalescing delivery: the next view opens a new one.
       UPDATE webhook_deliveries d
       SET claim_token = $7::uuid, next_retry_at = now() + $8::int * interval '1 millisecond', coalesce_key = NULL, updated_at = now()
       WHERE d.id = ANY(ARRAY(SELECT id FROM locked WHERE NOT cancel))
       RETURNING d.id, d.endpoint_id, d.event_id, d.event_type, d.payload, d.attempts
     )
     SELECT s.scanned, s.cancelled, c.id, c.endpoint_id, c.event_id, c.event_type, c.payload, c.attempts,
            e.revision, e.url, e.secret_encrypted, e.previous_secret_encrypted, e.previous_secret_expires_at
     FROM (SELECT (SELECT count(*) FROM due)::int AS scanned, (SELECT count(*) FROM cancelled)::int AS cancelled) s
     LEFT JOIN (claimed c JOIN webhook_endpoints e ON e.id = c.endpoint_id) ON true`;
  return {
    text,
    params: [saturated, scan, busyIds, busyCounts, options.perEndpointLimit, limit, token, Math.round(options.leaseMs), ...(ids ? [ids] : [])],
    scan,
    saturated: saturated.length > 0,
  };
}

function toDispatchedRow(row: { id: string; endpoint_id: string; next_retry_at: Date }): DispatchedRow {
  return { id: row.id, endpointId: row.endpoint_id, nextRetryAt: row.next_retry_at };
}
