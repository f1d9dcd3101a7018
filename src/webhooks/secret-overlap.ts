/**
 * Rotation-aware diagnosis: is a receiver that refuses our signatures still verifying with a
 * secret we stopped signing with? And the remedy the endpoint detail offers: sign with the
 * previous secret again for a while (extend the overlap).
 *
 * The rule (README, "Signature debugger"): an attempt answered 401 or 403 is labelled
 * RECEIVER_ON_PREVIOUS_SECRET when the endpoint's last accepted (2xx) attempt before it was
 * signed with a secret that this attempt was not signed with, and no attempt still signed with
 * that secret was refused (401/403) in between. The receiver accepted requests while they
 * carried the old secret and began refusing them when it stopped signing: its grace period
 * ended, or a rotation had none. It reads only the fingerprints each attempt recorded, so it
 * does not depend on what the endpoint stores now.
 *
 * Raw SQL because the rule compares arrays of fingerprints across attempts of other
 * deliveries, and the extension moves an expiry only forwards in one statement; neither is
 * something Prisma expresses. Every statement runs on both stores.
 *
 * The history it reads is bounded: the attempts of the endpoint's newest ROTATION_HINT_DELIVERIES
 * deliveries, found through the queue's and the log's (endpoint_id, id) keys and then the
 * earlier attempts' (delivery_id, attempt_number). An endpoint's whole attempt log is never
 * scanned, and no index is added to the attempt insert path for it. An attempt of an older delivery is judged on that recent
 * history only, which may have no accepted attempt before it: then it gets no label.
 */
import { z } from 'zod';
import type { SqlRunner } from '../db/sql-runner.ts';
import { ENDPOINT_CHANGED_CHANNEL } from './queue/channels.ts';
import { SIGNATURE_REFUSED_CODES } from './signature-debug.ts';
import { uuidSchema } from '../ids.ts';

/**
 * How long a previous secret is kept after it stops signing: within this window the overlap
 * can be extended; after it the retention job forgets the secret for good.
 */
export const PREVIOUS_SECRET_KEPT_AFTER_EXPIRY_MS = 7 * 86_400_000;
export const EXTEND_MIN_HOURS = 1;
export const EXTEND_MAX_HOURS = 168;

export const extendPreviousSecretInput = z.strictObject({
  hours: z
    .int('must be a whole number of hours')
    .min(EXTEND_MIN_HOURS, `must be at least ${EXTEND_MIN_HOURS}`)
    .max(EXTEND_MAX_HOURS, `must be at most ${EXTEND_MAX_HOURS} (7 days)`),
});
export type ExtendPreviousSecretInput = z.input<typeof extendPreviousSecretInput>;

export const extendedPreviousSecretSchema = z.object({
  id: uuidSchema,
  previousSecretExpiresAt: z.date(),
  previousSecretFingerprint: z.string().nullable(),
});
export type ExtendedPreviousSecret = z.infer<typeof extendedPreviousSecretSchema>;

export const previousSecretOverlapSchema = z
  .object({
    fingerprint: z.string().nullable().describe('Fingerprint of the previous secret (sha256 of the `whsec_…` string, first 8 hex)'),
    expiresAt: z.date().describe('When the previous secret stops (or stopped) signing'),
    active: z.boolean().describe('The previous secret still signs, beside the current one'),
    canExtend: z.boolean().describe('POST /api/webhooks/:id/extend-previous-secret can make it sign again (or longer)'),
    extendableUntil: z.date().describe('After this the previous secret is forgotten and cannot be extended'),
    receiverOnPreviousSecret: z
      .boolean()
      .describe("The endpoint's latest accepted-or-refused attempt was refused and labelled RECEIVER_ON_PREVIOUS_SECRET for this secret"),
    message: z.string().nullable().describe('What to do, when the receiver is still on the previous secret'),
  })
  .nullable()
  .describe('The previous secret of a rotation while it is kept; null when there is none');
export type PreviousSecretOverlap = z.infer<typeof previousSecretOverlapSchema>;

/** How many of an endpoint's newest deliveries the rotation rule looks back through. */
export const ROTATION_HINT_DELIVERIES = 100;
// Constant integers, so inlining them into the SQL below is safe.
const REFUSED = `(${SIGNATURE_REFUSED_CODES.join(', ')})`;
/**
 * The attempts of the endpoint's ($1) newest deliveries, which the rule reads. An array of ids,
 * not a join: the planner then looks their attempts up by key instead of hashing the tables.
 */
const HISTORY = `recent AS (
     SELECT ARRAY(SELECT r.id FROM ((SELECT l.id FROM webhook_delivery_log l WHERE l.endpoint_id = $1::uuid
                                     ORDER BY l.id DESC LIMIT ${ROTATION_HINT_DELIVERIES})
                                    UNION ALL
                                    (SELECT q.delivery_id FROM webhook_queue q WHERE q.endpoint_id = $1::uuid
                                     ORDER BY q.delivery_id DESC LIMIT ${ROTATION_HINT_DELIVERIES})) r
                  ORDER BY r.id DESC LIMIT ${ROTATION_HINT_DELIVERIES}) AS ids
   ),
   history AS MATERIALIZED (
     SELECT a.delivery_id, a.attempt_number, a.started_at, a.response_code, a.signed_with
     FROM webhook_earlier_attempts a, recent WHERE a.delivery_id = ANY(recent.ids)
     UNION ALL
     SELECT l.id, l.attempts, l.attempt_started_at, l.response_code, coalesce(string_to_array(l.signed_with, ' '), ARRAY[]::text[])
     FROM recent, unnest(recent.ids) AS r(id) JOIN webhook_delivery_log l ON l.endpoint_id = $1::uuid AND l.id = r.id
     WHERE l.attempt_started_at IS NOT NULL
   )`;

/**
 * For each of `attemptNumbers` (attempts of delivery `deliveryId` of endpoint `endpointId`) that
 * the rule labels: the fingerprints of the secrets the receiver appears to still verify with.
 * Unlabelled ones are absent.
 */
export async function receiverOnDroppedSecrets(
  sql: SqlRunner,
  endpointId: string,
  deliveryId: string,
  attemptNumbers: readonly number[],
): Promise<Map<number, string[]>> {
  if (attemptNumbers.length === 0) return new Map();
  const rows = await sql.query<{ attempt_number: number; dropped: string[] }>(
    `WITH ${HISTORY},
     target AS (
       SELECT t.attempt_number, t.started_at, t.signed_with
       FROM (SELECT a.attempt_number, a.started_at, a.response_code, a.signed_with
             FROM webhook_earlier_attempts a WHERE a.delivery_id = $2::uuid
             UNION ALL
             SELECT l.attempts, l.attempt_started_at, l.response_code, coalesce(string_to_array(l.signed_with, ' '), ARRAY[]::text[])
             FROM webhook_delivery_log l WHERE l.endpoint_id = $1::uuid AND l.id = $2::uuid AND l.attempt_started_at IS NOT NULL) t
       WHERE t.attempt_number = ANY($3::int[]) AND t.response_code IN ${REFUSED} AND cardinality(t.signed_with) > 0
     ),
     judged AS (
       SELECT t.attempt_number, t.started_at, accepted.started_at AS accepted_at,
              ARRAY(SELECT f FROM unnest(accepted.signed_with) AS f WHERE f <> ALL (t.signed_with)) AS dropped
       FROM target t
       CROSS JOIN LATERAL (
         SELECT x.started_at, x.signed_with
         FROM history x
         WHERE x.started_at < t.started_at AND x.response_code BETWEEN 200 AND 299
         ORDER BY x.started_at DESC
         LIMIT 1
       ) accepted
     )
     SELECT j.attempt_number, j.dropped
     FROM judged j
     WHERE cardinality(j.dropped) > 0
       AND NOT EXISTS (
         SELECT 1
         FROM history x
         WHERE x.started_at > j.accepted_at AND x.started_at < j.started_at
           AND x.response_code IN ${REFUSED} AND x.signed_with && j.dropped
       )`,
    [endpointId, deliveryId, attemptNumbers],
  );
  return new Map(rows.map((row) => [row.attempt_number, row.dropped]));
}

/**
 * The rule applied to the endpoint's latest attempt that the receiver accepted or refused
 * (2xx, 401, 403) among its newest deliveries: the secrets it still appears to be on, or none when that attempt was
 * accepted or is not labelled.
 */
export async function endpointReceiverOnDroppedSecrets(sql: SqlRunner, endpointId: string): Promise<string[]> {
  const latest = await sql.query<{ delivery_id: string; attempt_number: number; refused: boolean }>(
    `WITH ${HISTORY}
     SELECT x.delivery_id, x.attempt_number, x.response_code IN ${REFUSED} AS refused
     FROM history x
     WHERE x.response_code BETWEEN 200 AND 299 OR x.response_code IN ${REFUSED}
     ORDER BY x.started_at DESC
     LIMIT 1`,
    [endpointId],
  );
  const attempt = latest[0];
  if (!attempt?.refused) return [];
  const labelled = await receiverOnDroppedSecrets(sql, endpointId, attempt.delivery_id, [attempt.attempt_number]);
  return labelled.get(attempt.attempt_number) ?? [];
}

/**
 * Makes the stored previous secret sign until `until` (never earlier than it already does), if
 * it is still kept. Undefined when there is nothing to extend (no previous secret, forgotten,
 * or not this user's endpoint).
 */
export async function extendPreviousSecret(
  sql: SqlRunner,
  params: { userId: string; endpointId: string; until: Date; now: Date },
): Promise<{ expiresAt: Date; sealedPrevious: string } | undefined> {
  const rows = await sql.query<{ previous_secret_expires_at: Date | string; previous_secret_encrypted: string }>(
    `UPDATE webhook_endpoints
        SET previous_secret_expires_at = greatest(previous_secret_expires_at, $3::timestamptz),
            revision = revision + 1, updated_at = now()
      WHERE id = $1::uuid AND user_id = $2::uuid AND previous_secret_encrypted IS NOT NULL
        AND previous_secret_expires_at > $4::timestamptz
      RETURNING previous_secret_expires_at, previous_secret_encrypted, pg_notify('${ENDPOINT_CHANGED_CHANNEL}', id::text)`,
    [
      params.endpointId,
      params.userId,
      params.until.toISOString(),
      new Date(params.now.getTime() - PREVIOUS_SECRET_KEPT_AFTER_EXPIRY_MS).toISOString(),
    ],
  );
  const row = rows[0];
  return row && { expiresAt: new Date(row.previous_secret_expires_at), sealedPrevious: row.previous_secret_encrypted };
}

/** Pure: the endpoint detail's `previousSecretOverlap`. */
export function describeOverlap(params: {
  endpointId: string;
  /** The stored previous secret, or null when none is stored. */
  previous: { expiresAt: Date; fingerprint: string | null } | null;
  /** endpointReceiverOnDroppedSecrets. */
  receiverOnSecrets: readonly string[];
  now: Date;
}): PreviousSecretOverlap {
  const { previous, now } = params;
  if (previous === null) return null;
  const { expiresAt, fingerprint } = previous;
  const extendableUntil = new Date(expiresAt.getTime() + PREVIOUS_SECRET_KEPT_AFTER_EXPIRY_MS);
  const active = expiresAt.getTime() > now.getTime();
  const canExtend = extendableUntil.getTime() > now.getTime();
  const receiverOnPreviousSecret = fingerprint !== null && params.receiverOnSecrets.includes(fingerprint);
  return {
    fingerprint,
    expiresAt,
    active,
    canExtend,
    extendableUntil,
    receiverOnPreviousSecret,
    // Once extended, the previous secret signs again and the offer has been taken.
    message:
      receiverOnPreviousSecret && canExtend && !active
        ? `Your receiver is still on the previous secret (${fingerprint}): it refuses deliveries since that secret ` +
          `stopped signing at ${expiresAt.toISOString()}. Switch it to the current secret, or extend the overlap: ` +
          `POST /api/webhooks/${params.endpointId}/extend-previous-secret {"hours": 24} signs with both secrets again for ` +
          `that long (possible until ${extendableUntil.toISOString()}).`
        : null,
  };
}
