import { AppError } from '../../errors.ts';
import type { Prisma } from '../../generated/prisma/client.ts';

/**
 * Refuses card ids that are not cards of `userId`: 400 UNKNOWN_CARD, each such id named by its
 * place in `cardIds`. Another user's card and a card that does not exist get the same answer,
 * so the answer never tells whether someone else's card exists.
 *
 * Run it in the transaction that stores the list: the cards found are share-locked until the
 * commit, so a card deleted meanwhile is either gone before this check (refused) or deleted
 * after the commit, when its trigger takes it off the stored list (webhook_endpoints_cards_deleted).
 */
export async function assertOwnCards(tx: Prisma.TransactionClient, userId: string, cardIds: readonly string[]): Promise<void> {
  if (cardIds.length === 0) return;
  const found = await tx.$queryRaw<Array<{ id: string }>>`
    SELECT id::text FROM cards WHERE owner_id = ${userId}::uuid AND id = ANY(${cardIds}::uuid[]) FOR KEY SHARE`;
  const own = new Set(found.map((card) => card.id));
  // Named as the routes' own validation names a field of the request body, so clients place it the same way.
  const details = cardIds.flatMap((id, i) => (own.has(id) ? [] : [{ field: `body.cardIds.${i}`, message: 'is not one of your cards' }]));
  const first = details[0];
  if (first) throw new AppError('UNKNOWN_CARD', `${first.field}: ${first.message}`, details);
}
