import type { SqlRunner } from '../../db/sql-runner.ts';
import { GONE_DISABLED_REASON } from '../delivery/attempt-outcome.ts';
import type { OutcomeKind } from './types.ts';
import { AUTO_DISABLE_AFTER_CONSECUTIVE_FAILURES } from '../delivery/retry-policy.ts';
import { ENDPOINT_CHANGED_CHANNEL } from './channels.ts';
import type { AppliedAttempt, AttemptRecord } from './types.ts';

const COMPLETE_ATTEMPTS = `WITH input AS (
     -- json, not jsonb: the recordset reads the text once, where jsonb would first build its tree.
     SELECT * FROM json_to_recordset($1::json) AS i(
       ord int, endpoint_id uuid, delivery_id uuid, claim_token uuid, started_at timestamptz, duration_ms int,
       response_code int, response_body text, error text, outcome text, delay_ms int,
       signature_timestamp bigint, body_bytes int, body_sha256 text, signed_with text[], response_date timestamptz,
       coalesced_body text)
   ),
   found AS (
     -- Each result's queue row by one primary-key lookup (a subquery per result is always run that
     -- way): joined to the recordset, whose size the planner cannot see, a queue holding a backlog
     -- was read whole for every batch of results. The statements below reach the rows by ctid.
     SELECT i.outcome, (SELECT q.ctid FROM webhook_queue q WHERE q.endpoint_id = i.endpoint_id AND q.delivery_id = i.delivery_id) AS row_id
     FROM input i
   ),
   finished AS (
     DELETE FROM webhook_queue q USING input i
     WHERE q.ctid = ANY(ARRAY(SELECT row_id FROM found WHERE outcome <> 'retry'))
       AND q.endpoint_id = i.endpoint_id AND q.delivery_id = i.delivery_id AND q.claim_token = i.claim_token AND i.outcome <> 'retry'
     RETURNING q.endpoint_id, q.delivery_id AS id, q.event_id, q.event_type, q.attempts + 1 AS attempts, q.created_at, i.ord, i.outcome
   ),
   retried AS (
     UPDATE webhook_queue q SET
       attempts = q.attempts + 1,
       due_at = now() + i.delay_ms * interval '1 millisecond',
       claim_token = NULL,
       lease_until = NULL
     FROM input i
     WHERE q.ctid = ANY(ARRAY(SELECT row_id FROM found WHERE outcome = 'retry'))
       AND q.endpoint_id = i.endpoint_id AND q.delivery_id = i.delivery_id AND q.claim_token = i.claim_token AND i.outcome = 'retry'
     RETURNING q.endpoint_id, q.delivery_id AS id, q.attempts, i.ord, i.outcome
   ),
   updated AS (
     SELECT endpoint_id, id, attempts, ord, outcome FROM finished
     UNION ALL SELECT endpoint_id, id, attempts, ord, outcome FROM retried
   ),
   logged AS (
     INSERT INTO webhook_delivery_log (endpoint_id, id, event_id, event_type, status, attempts, error, finished_at, created_at, body,
                                       attempt_started_at, attempt_duration_ms, response_code, response_body,
                                       signature_timestamp, body_bytes, body_sha256, signed_with, response_date)
     SELECT f.endpoint_id, f.id, f.event_id, f.event_type,
            (CASE i.outcome WHEN 'success' THEN 'success' ELSE 'failed' END)::webhook_delivery_status,
            f.attempts, i.error, NULL, f.created_at, i.coalesced_body,
            i.started_at, i.duration_ms, i.response_code, i.response_body,
            i.signature_timestamp, i.body_bytes, decode(i.body_sha256, 'hex'), array_to_string(i.signed_with, ' '), i.response_date
     FROM finished f JOIN input i ON i.ord = f.ord
   ),
   earlier AS (
     INSERT INTO webhook_earlier_attempts (delivery_id, attempt_number, started_at, duration_ms, response_code, response_body, error,
                                           signature_timestamp, body_bytes, body_sha256, signed_with, response_date)
     SELECT r.id, r.attempts, i.started_at, i.duration_ms, i.response_code, i.response_body, i.error,
            i.signature_timestamp, i.body_bytes, i.body_sha256, i.signed_with, i.response_date
     FROM retried r JOIN input i ON i.ord = r.ord
   ),
   stats AS (
     SELECT u.endpoint_id,
            bool_or(u.outcome = 'gone') AS gone,
            max(u.ord) FILTER (WHERE u.outcome = 'success') AS last_success
     FROM updated u
     GROUP BY u.endpoint_id
   ),
   delta AS MATERIALIZED (
     -- Materialised: inlined, its failure count became a subplan for each of the dozen places the
     -- update below reads it, every one of them set up again on every execution.
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
     -- Rows this statement finished or retried are left out; a claim cancels a retried one when
     -- it comes due. Rows another worker holds finish their attempt.
     DELETE FROM webhook_queue q USING endpoints x
     -- The first condition is evaluated once, before any scan: a batch that disabled no endpoint
     -- (nearly all) reads nothing here, whatever plan the queue's statistics of the moment gave.
     WHERE EXISTS (SELECT 1 FROM endpoints WHERE NOT is_active)
       AND q.endpoint_id = ANY(ARRAY(SELECT id FROM endpoints WHERE NOT is_active))
       AND NOT x.is_active AND q.endpoint_id = x.id AND q.claim_token IS NULL
       AND NOT EXISTS (SELECT 1 FROM updated u WHERE u.endpoint_id = q.endpoint_id AND u.id = q.delivery_id)
     RETURNING q.*, x.disabled_reason
   ),
   cancel_logged AS (
     INSERT INTO webhook_delivery_log (endpoint_id, id, event_id, event_type, status, attempts, error, finished_at, created_at, body)
     SELECT c.endpoint_id, c.delivery_id, c.event_id, c.event_type, 'cancelled', c.attempts,
            'endpoint disabled: ' || coalesce(c.disabled_reason, 'by its owner'), now(), c.created_at, c.coalesced_payload::text
     FROM cancelled c
   )
   SELECT u.id, u.endpoint_id, u.outcome, u.attempts, x.is_active AS endpoint_active, x.disabled_reason,
          (SELECT count(*) FROM cancelled)::int AS cancelled
   FROM updated u LEFT JOIN endpoints x ON x.id = u.endpoint_id`;

/**
 * Applies attempt results in ONE statement: a finished delivery (success, failed, gone) leaves
 * the queue for the log, its final attempt on its log row; a retried one stays queued, due
 * after its delay, and its attempt goes to the earlier attempts. It also
 * updates each endpoint's consecutive-failure count in result order (a success resets it, a
 * delivery that ends failed adds one). An endpoint reaching
 * AUTO_DISABLE_AFTER_CONSECUTIVE_FAILURES, or answering 410, is disabled and its waiting
 * deliveries are cancelled. Results whose claim token no longer matches are ignored.
 */
export async function completeAttempts(sql: SqlRunner, records: readonly AttemptRecord[]): Promise<AppliedAttempt[]> {
  if (records.length === 0) return [];
  const input = records.map((r, ord) => ({
    ord,
    endpoint_id: r.endpointId,
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
    coalesced_body: r.coalescedBody,
  }));
  const rows = await sql.query<{
    id: string;
    endpoint_id: string;
    outcome: OutcomeKind;
    attempts: number;
    endpoint_active: boolean | null;
    disabled_reason: string | null;
  }>(COMPLETE_ATTEMPTS, [JSON.stringify(input), AUTO_DISABLE_AFTER_CONSECUTIVE_FAILURES, GONE_DISABLED_REASON]);
  return rows.map((row) => ({
    deliveryId: row.id,
    endpointId: row.endpoint_id,
    outcome: row.outcome,
    attemptNumber: row.attempts,
    endpointDisabledReason: row.endpoint_active === false ? (row.disabled_reason ?? 'disabled') : null,
  }));
}
