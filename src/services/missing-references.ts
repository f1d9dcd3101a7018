import { AppError } from '../errors.ts';
import type { SqlRunner } from '../db/sql-runner.ts';
import type { UserRef } from '../user-ref.ts';

/** PostgreSQL's foreign_key_violation: a referenced row vanished between the read and the insert of one statement. */
const FOREIGN_KEY_VIOLATION = '23503';

/**
 * Runs a view or a save (with its event's transaction); a foreign-key failure becomes a 401 when
 * the acting user's account is gone (a token that outlived it), otherwise a 404. `sql` must be
 * outside the failed transaction, which can run nothing more.
 */
export async function explainingMissingReferences<T>(sql: SqlRunner, actor: UserRef | null, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    if ((error as { code?: unknown } | null)?.code !== FOREIGN_KEY_VIOLATION) throw error;
    const exists = actor && (await sql.query('SELECT 1 FROM users WHERE id = $1::uuid', [actor.id])).length > 0;
    throw actor && !exists ? new AppError('INVALID_TOKEN', 'The account of this token no longer exists') : new AppError('NOT_FOUND');
  }
}
