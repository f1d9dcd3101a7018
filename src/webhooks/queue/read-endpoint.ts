import type { SqlRunner } from '../../db/sql-runner.ts';
import type { StoredEndpointConfig } from './types.ts';

const READ_ENDPOINT = `SELECT revision, is_active, url, secret_encrypted, previous_secret_encrypted, previous_secret_expires_at
   FROM webhook_endpoints WHERE id = $1::uuid`;

/** The endpoint's sending configuration now; undefined when it was deleted. */
export async function readEndpoint(sql: SqlRunner, endpointId: string): Promise<StoredEndpointConfig | undefined> {
  const rows = await sql.query<{
    revision: number;
    is_active: boolean;
    url: string;
    secret_encrypted: string;
    previous_secret_encrypted: string | null;
    previous_secret_expires_at: Date | null;
  }>(READ_ENDPOINT, [endpointId]);
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
