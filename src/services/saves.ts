import { AppError } from '../errors.ts';
import type { SqlRunner } from '../db/sql-runner.ts';
import { isUuid } from '../ids.ts';
import type { ContactSavedData } from '../webhooks/events.ts';
import { cardNotFound } from './cards.ts';
import type { UserRef } from '../user-ref.ts';

/** Saves: a user keeping someone's card among their contacts, where `contact.saved` happens. */

export type SaveCardResult = { created: false } | { created: true; event: ContactSavedData };

/**
 * Saves a card to `saver`'s contacts, in one statement (run it in the event's transaction).
 * Idempotent: the (user, card) pair is unique, so of any number of concurrent saves exactly one
 * creates the row and reports `created: true`.
 *
 * Saving one's own card is refused (400 CANNOT_SAVE_OWN_CARD): a card is not a contact of its
 * owner, and `contact.saved` would tell owners they saved themselves — the same reasoning that
 * keeps self-views out of `card.viewed`.
 */
export async function saveCard(sql: SqlRunner, saver: UserRef, cardId: string): Promise<SaveCardResult> {
  if (!isUuid(cardId)) throw cardNotFound();
  const rows = await sql.query<{ owner_id: string; is_public: boolean; created: boolean }>(
    `WITH card AS (
       SELECT owner_id, is_public FROM cards WHERE id = $2::uuid
     ),
     saved AS (
       INSERT INTO saved_cards (user_id, card_id)
       SELECT $1::uuid, $2::uuid FROM card WHERE card.is_public AND card.owner_id <> $1::uuid
       ON CONFLICT (user_id, card_id) DO NOTHING
       RETURNING 1
     )
     SELECT owner_id, is_public, EXISTS (SELECT 1 FROM saved) AS created FROM card`,
    [saver.id, cardId],
  );
  const card = rows[0];
  if (!card || (!card.is_public && card.owner_id !== saver.id)) throw cardNotFound();
  if (card.owner_id === saver.id) throw new AppError('CANNOT_SAVE_OWN_CARD');
  if (!card.created) return { created: false };
  return { created: true, event: { userId: card.owner_id, cardId, savedBy: { id: saver.id, username: saver.username } } };
}
