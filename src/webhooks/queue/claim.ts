import { randomUUID } from 'node:crypto';
import type { SqlRunner } from '../../db/sql-runner.ts';
import type { ClaimedDelivery, ClaimOptions, ClaimResult } from './types.ts';

/** How far past the claim limit a claim looks, so one endpoint's backlog cannot hide the others'. */
const CLAIM_SCAN_FACTOR = 2;
const CLAIM_SCAN_MIN = 64;
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
