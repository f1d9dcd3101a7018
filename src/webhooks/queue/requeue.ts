import type { SqlRunner } from '../../db/sql-runner.ts';
import { DUE_CHANNEL } from './channels.ts';
import { uuid7Floor } from './partitions.ts';
import { requeueReopened } from './release.ts';

/**
 * Milliseconds between the due times of consecutive requeued deliveries. `due_at` keeps
 * milliseconds (timestamptz(3)), so a smaller step would round into ties, which a claim takes in
 * no particular order; one millisecond keeps them distinct and oldest first.
 */
export const REQUEUE_DUE_STEP_MS = 1;

export interface RequeueFailedParams {
  endpointId: string;
  /** Deliveries created from `since` (inclusive) to `until` (exclusive). */
  since: Date;
  until: Date;
  /** Deliveries that have had this many attempts are left as they are (and counted). */
  maxAttempts: number;
  /** Signal worker processes listening on DUE_CHANNEL (PostgreSQL without a worker in this process). */
  notify: boolean;
}

export interface RequeuedFailed {
  /** False when the endpoint is missing or disabled: nothing was requeued. */
  active: boolean;
  requeued: number;
  /** Failed deliveries of the window left alone: they have had `maxAttempts` attempts. */
  skipped: number;
}

// The window is a range of the log's (endpoint_id, id) key: UUIDv7 ids begin with their creation
// time, so the floors of since and until bound it, and only the day partitions it spans are read.
// Rows with `created_at` set have ids that are not UUIDv7 (from before the queue and log) and
// whose place in that range says nothing of their time: they are left out.
const WINDOW = `l.endpoint_id = $1::uuid AND l.id >= $2::uuid AND l.id < $3::uuid AND l.created_at IS NULL AND l.status = 'failed'`;

// The endpoint row is share-locked and checked active on its latest version: a disable that
// commits first leaves nothing to requeue, and one that commits after sees (and cancels) the
// rows this statement queued, so none is sent after the disable has answered.
const requeueFailedStatement = (notify: boolean) => `WITH endpoint AS (
     SELECT id FROM webhook_endpoints WHERE id = $1::uuid AND is_active FOR SHARE
   ),
   reopened AS (
     DELETE FROM webhook_delivery_log l
     WHERE ${WINDOW} AND l.attempts < $4::int AND EXISTS (SELECT 1 FROM endpoint)
     RETURNING l.*
   ),
   ${requeueReopened(`now() + (row_number() OVER (ORDER BY id) - 1) * interval '${REQUEUE_DUE_STEP_MS} millisecond'`)}
   SELECT EXISTS (SELECT 1 FROM endpoint) AS active,
          (SELECT count(*) FROM back)::int AS requeued,
          (SELECT count(*) FROM webhook_delivery_log l WHERE ${WINDOW} AND l.attempts >= $4::int)::int AS skipped
          ${notify ? `, CASE WHEN EXISTS (SELECT 1 FROM back) THEN pg_notify('${DUE_CHANNEL}', '') END AS notified` : ''}`;

const REQUEUE_FAILED = requeueFailedStatement(false);
const REQUEUE_FAILED_NOTIFY = requeueFailedStatement(true);

/**
 * Moves an endpoint's failed deliveries created in a window back from the log to the queue, in
 * one statement: same ids, attempts keep counting. They come due oldest first, one
 * REQUEUE_DUE_STEP_MS apart from now, so the worker's claims (oldest due first, within the
 * per-endpoint in-flight caps) send them oldest first, at the pace the endpoint's cap allows.
 */
export async function requeueFailed(sql: SqlRunner, params: RequeueFailedParams): Promise<RequeuedFailed> {
  const rows = await sql.query<{ active: boolean; requeued: number; skipped: number }>(
    params.notify ? REQUEUE_FAILED_NOTIFY : REQUEUE_FAILED,
    [params.endpointId, uuid7Floor(params.since), uuid7Floor(params.until), params.maxAttempts],
  );
  const row = rows[0];
  return { active: row?.active ?? false, requeued: row?.requeued ?? 0, skipped: row?.skipped ?? 0 };
}
