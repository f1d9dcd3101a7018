import { randomUUID } from 'node:crypto';
import type { SqlRunner } from '../../db/sql-runner.ts';
import { renderBody } from '../envelope.ts';
import { nextSendAt, pacedOut, pacedUntilAfter, sendsAllowedNow } from './pacing.ts';
import type { ClaimedDelivery, ClaimOptions, ClaimResult } from './types.ts';

/** How far past the claim limit a claim looks, so one endpoint's backlog cannot hide the others'. */
const CLAIM_SCAN_FACTOR = 2;
const CLAIM_SCAN_MIN = 64;
/**
 * A claim visits at most this many due rows: each costs a heap visit, and a worker with a large
 * free window would otherwise read thousands for the few its per-endpoint caps let it take. Rows
 * beyond it are claimed by the next round, which the held rows running low asks for.
 */
const CLAIM_SCAN_MAX = 256;
const CANCELLED_DISABLED = 'endpoint disabled before the attempt';

interface RawClaimRow {
  scanned: number;
  cancelled: number;
  paced_left: number;
  paced_wait_ms: number | null;
  id: string | null;
  endpoint_id: string;
  event_id: string;
  event_type: string;
  body: string | null;
  coalesced_payload: unknown;
  attempts: number;
  revision: number;
  url: string;
  secret_encrypted: string;
  previous_secret_encrypted: string | null;
  previous_secret_expires_at: Date | null;
}

/** Claims due deliveries, oldest first, within the worker's global and per-endpoint capacity. */
export function claimDueDeliveries(sql: SqlRunner, options: ClaimOptions): Promise<ClaimResult> {
  return runClaim(sql, options, undefined);
}

/** The same claim restricted to `ids` (rows just dispatched): taken only if still pending and due. */
export function claimDeliveries(sql: SqlRunner, ids: readonly string[], options: ClaimOptions): Promise<ClaimResult> {
  return runClaim(sql, options, ids);
}

async function runClaim(sql: SqlRunner, options: ClaimOptions, ids: readonly string[] | undefined): Promise<ClaimResult> {
  const limit = Math.max(0, Math.floor(options.limit));
  if (limit === 0 || (ids && ids.length === 0)) return { deliveries: [], cancelled: 0, mayHaveMore: limit === 0 };
  const token = randomUUID();
  const claim = claimStatement(options, ids, token);
  const rows = await sql.query<RawClaimRow>(claim.text, claim.params);
  const summary = rows[0] ?? { scanned: 0, cancelled: 0, paced_left: 0, paced_wait_ms: null };
  const deliveries: ClaimedDelivery[] = [];
  for (const row of rows) {
    if (row.id === null) continue;
    deliveries.push({
      id: row.id,
      endpointId: row.endpoint_id,
      eventId: row.event_id,
      eventType: row.event_type,
      // A coalesced delivery's bytes are fixed from its claim on, which closed it to more views.
      body: row.body ?? renderBody(row.event_id, row.event_type, row.coalesced_payload),
      coalesced: row.coalesced_payload !== null,
      attempts: row.attempts,
      claimToken: token,
      revision: row.revision,
      url: row.url,
      secretEncrypted: row.secret_encrypted,
      previousSecretEncrypted: row.previous_secret_encrypted,
      previousSecretExpiresAt: row.previous_secret_expires_at,
    });
  }
  // Rows waiting for their endpoint's turn are not more to claim now: the wake timer comes back for them.
  const untouched = summary.scanned - deliveries.length - summary.cancelled - summary.paced_left;
  return {
    deliveries,
    cancelled: summary.cancelled,
    mayHaveMore: untouched > 0 || (!ids && summary.scanned >= claim.scan) || claim.saturated,
    // Clamped here, not by greatest() in SQL: that ignores a NULL, and no paced endpoint left behind would read as a turn now.
    ...(summary.paced_wait_ms !== null && { pacedWaitMs: Math.max(0, summary.paced_wait_ms) }),
  };
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
  const scan = ids ? ids.length : Math.min(Math.max(limit * CLAIM_SCAN_FACTOR, CLAIM_SCAN_MIN), CLAIM_SCAN_MAX);
  // A row is due once `due_at` has passed, unless a live lease holds it. `due` and `ranked` read
  // without locks; `locked` then locks what was chosen, skipping rows another worker holds, and
  // re-checks that on the latest row version (READ COMMITTED re-evaluates the locked table's
  // conditions), so two claimers never share a row. The claim writes only unindexed columns (and
  // clears an open coalescing key), so its update is HOT: no index entry is written. The window
  // function must sit in its own CTE: PostgreSQL refuses FOR UPDATE next to one. Rows of a
  // disabled endpoint are cancelled (logged, never sent); rows of a deleted one only removed.
  //
  // A paced endpoint (pacing.ts) gives no more rows than its turns allow: `pacing` locks its
  // pacing state before any queue row is locked, `paced` charges it for the rows claimed. Rows of
  // an endpoint with no turn now are left out of `due` altogether, so a paced backlog cannot fill
  // the scan; the claim reports when the next turn of an endpoint it left rows of comes.
  const text = `WITH due AS (
       SELECT q.ctid AS row_id, q.endpoint_id, q.delivery_id, q.due_at, e.is_active, e.id IS NOT NULL AS endpoint_exists,
              e.max_per_second IS NOT NULL AS paced
       FROM webhook_queue q
       LEFT JOIN webhook_endpoints e ON e.id = q.endpoint_id
       WHERE q.due_at <= now() AND (q.claim_token IS NULL OR q.lease_until <= now())
         AND NOT (q.endpoint_id = ANY($1::uuid[]))
         AND NOT ${pacedOut('e')}
         ${ids ? 'AND q.delivery_id = ANY($9::uuid[])' : ''}
       ORDER BY q.due_at
       LIMIT $2
     ),
     ranked AS (
       SELECT due.*, row_number() OVER (PARTITION BY due.endpoint_id ORDER BY due.due_at, due.delivery_id) AS endpoint_rank
       FROM due
     ),
     pacing AS MATERIALIZED (
       -- Locked in id order, so concurrent claims never deadlock; the lock also reads the latest
       -- committed state, so a claim that waited for another is allowed only what that one left.
       SELECT e.id AS endpoint_id, e.max_per_second, e.paced_until, ${sendsAllowedNow('e')} AS allowed
       FROM webhook_endpoints e
       WHERE e.id = ANY(ARRAY(SELECT DISTINCT endpoint_id FROM due WHERE paced AND is_active)) AND e.max_per_second IS NOT NULL
       ORDER BY e.id
       FOR NO KEY UPDATE OF e
     ),
     to_claim AS (
       SELECT r.row_id, r.endpoint_id, r.delivery_id
       FROM ranked r
       LEFT JOIN unnest($3::uuid[], $4::int[]) AS busy(endpoint_id, in_flight) ON busy.endpoint_id = r.endpoint_id
       LEFT JOIN pacing p ON p.endpoint_id = r.endpoint_id
       WHERE r.is_active AND r.endpoint_rank <= $5::int - coalesce(busy.in_flight, 0)
         AND (p.allowed IS NULL OR r.endpoint_rank <= p.allowed)
       ORDER BY r.due_at
       LIMIT $6
     ),
     paced_left AS (
       SELECT r.endpoint_id FROM ranked r JOIN pacing p ON p.endpoint_id = r.endpoint_id WHERE r.is_active AND r.endpoint_rank > p.allowed
     ),
     to_cancel AS (
       SELECT row_id, endpoint_id, delivery_id, endpoint_exists FROM ranked WHERE NOT coalesce(is_active, false)
     ),
     locked AS (
       -- Each chosen row is reached by the ctid \`due\` read it at: a TID scan reads no index, so a
       -- queue full of rows of the same endpoints costs nothing here (the primary key, given key
       -- arrays, was read for every row of those endpoints). A row changed since is locked at its
       -- latest version and taken only if that version is still due and unheld; \`row_id\` is the
       -- locked version's ctid, which the lock keeps stable for the statements below.
       SELECT q.ctid AS row_id, q.delivery_id, c.delivery_id IS NOT NULL AS cancel, coalesce(c.endpoint_exists, true) AS endpoint_exists
       FROM webhook_queue q
       LEFT JOIN to_cancel c ON c.endpoint_id = q.endpoint_id AND c.delivery_id = q.delivery_id
       WHERE q.ctid = ANY(ARRAY(SELECT row_id FROM to_claim UNION ALL SELECT row_id FROM to_cancel))
         AND q.due_at <= now() AND (q.claim_token IS NULL OR q.lease_until <= now())
       FOR UPDATE OF q SKIP LOCKED
     ),
     dequeued AS (
       DELETE FROM webhook_queue q
       WHERE q.ctid = ANY(ARRAY(SELECT row_id FROM locked WHERE cancel))
       RETURNING q.*, (SELECT l.endpoint_exists FROM locked l WHERE l.delivery_id = q.delivery_id) AS endpoint_exists
     ),
     cancelled AS (
       INSERT INTO webhook_delivery_log (endpoint_id, id, event_id, event_type, status, attempts, error, finished_at, created_at, body)
       SELECT d.endpoint_id, d.delivery_id, d.event_id, d.event_type, 'cancelled', d.attempts, '${CANCELLED_DISABLED}', now(), d.created_at,
              d.coalesced_payload::text
       FROM dequeued d WHERE d.endpoint_exists
     ),
     claimed AS (
       -- Clearing coalesce_key closes a coalescing delivery: the next view opens a new one.
       UPDATE webhook_queue q
       SET claim_token = $7::uuid, lease_until = now() + $8::int * interval '1 millisecond', coalesce_key = NULL
       WHERE q.ctid = ANY(ARRAY(SELECT row_id FROM locked WHERE NOT cancel))
       RETURNING q.delivery_id AS id, q.endpoint_id, q.event_id, q.event_type, q.coalesced_payload, q.attempts
     ),
     paced AS (
       UPDATE webhook_endpoints e SET paced_until = ${pacedUntilAfter('p', 'n.claimed')}
       FROM pacing p
       JOIN (SELECT endpoint_id, count(*)::int AS claimed FROM claimed GROUP BY endpoint_id) n ON n.endpoint_id = p.endpoint_id
       WHERE e.id = p.endpoint_id
       RETURNING e.id AS endpoint_id, e.paced_until
     ),
     next_turn AS (
       -- The earliest next turn among the endpoints this claim left rows of for want of one.
       SELECT min(${nextSendAt('t')}) AS at
       FROM (SELECT p.max_per_second, coalesce(u.paced_until, p.paced_until) AS paced_until
             FROM pacing p LEFT JOIN paced u ON u.endpoint_id = p.endpoint_id
             WHERE p.endpoint_id IN (SELECT endpoint_id FROM paced_left)) t
     ),
     -- What the answer needs of each endpoint and event, read once each: a claim's rows are a few
     -- endpoints' and share events (a view's rows for five endpoints come due together), and a
     -- lookup per row read the same index pages again for each.
     claimed_endpoints AS MATERIALIZED (
       SELECT e.id, e.revision, e.url, e.secret_encrypted, e.previous_secret_encrypted, e.previous_secret_expires_at
       FROM webhook_endpoints e
       WHERE e.id = ANY(ARRAY(SELECT DISTINCT endpoint_id FROM claimed))
     ),
     claimed_events AS MATERIALIZED (
       SELECT ev.id, ev.body
       FROM webhook_events ev
       WHERE ev.id = ANY(ARRAY(SELECT DISTINCT event_id FROM claimed WHERE coalesced_payload IS NULL))
     )
     SELECT s.scanned, s.cancelled, s.paced_left, s.paced_wait_ms,
            c.id, c.endpoint_id, c.event_id, c.event_type, ev.body, c.coalesced_payload, c.attempts,
            e.revision, e.url, e.secret_encrypted, e.previous_secret_encrypted, e.previous_secret_expires_at
     FROM (SELECT (SELECT count(*) FROM due)::int AS scanned, (SELECT count(*) FROM dequeued)::int AS cancelled,
                  (SELECT count(*) FROM paced_left)::int AS paced_left,
                  (SELECT ceil(extract(epoch FROM (at - now())) * 1000)::int FROM next_turn) AS paced_wait_ms) s
     LEFT JOIN (claimed c
                JOIN claimed_endpoints e ON e.id = c.endpoint_id
                LEFT JOIN claimed_events ev ON ev.id = c.event_id AND c.coalesced_payload IS NULL) ON true`;
  return {
    text,
    params: [
      saturated,
      scan,
      busyIds,
      busyCounts,
      options.perEndpointLimit,
      limit,
      token,
      Math.round(options.leaseMs),
      ...(ids ? [ids] : []),
    ],
    scan,
    saturated: saturated.length > 0,
  };
}
