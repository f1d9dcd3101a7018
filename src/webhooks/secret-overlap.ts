/**
 * Rotation-aware diagnosis: is a receiver that refuses our signatures still verifying with a
 * secret we stopped signing with?
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
 * deliveries, which Prisma cannot express; each function is one statement, for both stores.
 */
import type { SqlRunner } from '../db/migrate.ts';
import { SIGNATURE_REFUSED_CODES } from './signature-debug.ts';

// Constant integers, so inlining them into the SQL below is safe.
const REFUSED = `(${SIGNATURE_REFUSED_CODES.join(', ')})`;

/**
 * For each of `attemptIds` (attempts of endpoint `endpointId`) that the rule labels: the
 * fingerprints of the secrets the receiver appears to still verify with. Unlabelled ones are absent.
 */
export async function receiverOnDroppedSecrets(
  sql: SqlRunner,
  endpointId: string,
  attemptIds: readonly string[],
): Promise<Map<string, string[]>> {
  if (attemptIds.length === 0) return new Map();
  const rows = await sql.query<{ id: string; dropped: string[] }>(
    `WITH target AS (
       SELECT a.id, a.started_at, a.signed_with
       FROM webhook_delivery_attempts a
       JOIN webhook_deliveries d ON d.id = a.delivery_id
       WHERE a.id = ANY($2::uuid[]) AND d.endpoint_id = $1::uuid
         AND a.response_code IN ${REFUSED} AND cardinality(a.signed_with) > 0
     ),
     judged AS (
       SELECT t.id, t.started_at, accepted.started_at AS accepted_at,
              ARRAY(SELECT f FROM unnest(accepted.signed_with) AS f WHERE f <> ALL (t.signed_with)) AS dropped
       FROM target t
       CROSS JOIN LATERAL (
         SELECT x.started_at, x.signed_with
         FROM webhook_delivery_attempts x
         JOIN webhook_deliveries xd ON xd.id = x.delivery_id
         WHERE xd.endpoint_id = $1::uuid AND x.started_at < t.started_at AND x.response_code BETWEEN 200 AND 299
         ORDER BY x.started_at DESC
         LIMIT 1
       ) accepted
     )
     SELECT j.id, j.dropped
     FROM judged j
     WHERE cardinality(j.dropped) > 0
       AND NOT EXISTS (
         SELECT 1
         FROM webhook_delivery_attempts x
         JOIN webhook_deliveries xd ON xd.id = x.delivery_id
         WHERE xd.endpoint_id = $1::uuid AND x.started_at > j.accepted_at AND x.started_at < j.started_at
           AND x.response_code IN ${REFUSED} AND x.signed_with && j.dropped
       )`,
    [endpointId, attemptIds],
  );
  return new Map(rows.map((row) => [row.id, row.dropped]));
}
