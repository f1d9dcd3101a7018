import type { Database } from '../../db/database.ts';
import { AppError } from '../../errors.ts';
import { ENDPOINT_CHANGED_CHANNEL } from '../queue/channels.ts';
import {
  extendPreviousSecret,
  extendPreviousSecretInput,
  type ExtendedPreviousSecret,
  type ExtendPreviousSecretInput,
} from '../secret-overlap.ts';
import { generateEndpointSecret, sealedSecretFingerprint, type SecretBox } from '../secrets.ts';
import { endpointNotFound, findOwnEndpoint } from './find-own-endpoint.ts';
import { DEFAULT_GRACE_PERIOD_SECONDS, parseInput, rotateSecretInput, type RotatedSecretData, type RotateSecretInput } from './schemas.ts';
import { isUuid } from '../../ids.ts';

export interface SecretRotationDeps {
  db: Database;
  secretBox: SecretBox;
  /** As for the endpoint service: a committed change of the endpoint's secrets (endpoint-service.ts). */
  onEndpointChanged: (endpointId: string) => void;
}

/** An endpoint's signing secrets: a new one with a grace period for the old, and bringing the old one back. */
export class SecretRotation {
  readonly #deps: SecretRotationDeps;

  constructor(deps: SecretRotationDeps) {
    this.#deps = deps;
  }

  /**
   * A new secret; the current one stays valid (still sealed) until now + grace period, so
   * receivers can switch over. A grace period of 0 revokes the current secret at once.
   */
  async rotate(userId: string, endpointId: string, input?: RotateSecretInput): Promise<RotatedSecretData> {
    const { gracePeriodSeconds } = parseInput(rotateSecretInput, input) ?? { gracePeriodSeconds: DEFAULT_GRACE_PERIOD_SECONDS };
    if (!isUuid(endpointId)) throw endpointNotFound();
    const secret = generateEndpointSecret();
    const expiresAt = gracePeriodSeconds > 0 ? new Date(Date.now() + gracePeriodSeconds * 1000) : null;
    // Raw SQL because the old ciphertext moves column to column in one statement, which Prisma
    // cannot express; doing it atomically means two concurrent rotations never lose a secret.
    const rows = await this.#deps.db.sql.query<{ id: string; previous_secret_expires_at: Date | string | null }>(
      `UPDATE webhook_endpoints
          SET previous_secret_encrypted = CASE WHEN $4::timestamptz IS NULL THEN NULL ELSE secret_encrypted END,
              previous_secret_expires_at = $4::timestamptz,
              secret_encrypted = $3,
              revision = revision + 1,
              updated_at = now()
        WHERE id = $1::uuid AND user_id = $2::uuid
        RETURNING id, previous_secret_expires_at, pg_notify('${ENDPOINT_CHANGED_CHANNEL}', id::text)`,
      [endpointId, userId, this.#deps.secretBox.seal(secret), expiresAt?.toISOString() ?? null],
    );
    const row = rows[0];
    if (!row) throw endpointNotFound();
    this.#deps.onEndpointChanged(endpointId);
    return {
      id: row.id,
      secret,
      previousSecretExpiresAt: row.previous_secret_expires_at === null ? null : new Date(row.previous_secret_expires_at),
    };
  }

  /**
   * Makes the previous secret sign again, beside the current one, for `hours` from now (or
   * keeps its later expiry): for a receiver still on it. 409 NO_PREVIOUS_SECRET when none is
   * kept (never rotated, rotated with no grace period, or forgotten
   * PREVIOUS_SECRET_KEPT_AFTER_EXPIRY_MS after it stopped signing).
   */
  async extendPrevious(userId: string, endpointId: string, input: ExtendPreviousSecretInput): Promise<ExtendedPreviousSecret> {
    const { hours } = parseInput(extendPreviousSecretInput, input);
    await findOwnEndpoint(this.#deps.db.prisma, userId, endpointId, { id: true });
    const now = new Date();
    const extended = await extendPreviousSecret(this.#deps.db.sql, {
      userId,
      endpointId,
      until: new Date(now.getTime() + hours * 3_600_000),
      now,
    });
    if (!extended) throw new AppError('NO_PREVIOUS_SECRET');
    this.#deps.onEndpointChanged(endpointId);
    return {
      id: endpointId,
      previousSecretExpiresAt: extended.expiresAt,
      previousSecretFingerprint: sealedSecretFingerprint(this.#deps.secretBox, extended.sealedPrevious),
    };
  }
}
