import { AppError } from '../../errors.ts';
import type { Prisma } from '../../generated/prisma/client.ts';

/**
 * Where the host keeps its cards, for an endpoint's `cardIds`: a table with a uuid `id` and a
 * column naming each card's owner. The module reads it and nothing else of the host's cards.
 */
export interface CardTable {
  table: string;
  ownerColumn: string;
}

/** This repository's host: `cards (id, owner_id, …)`. */
export const DEFAULT_CARD_TABLE: CardTable = { table: 'cards', ownerColumn: 'owner_id' };

const IDENTIFIER = /^[a-z_][a-z0-9_]{0,62}$/;

/** The statement that finds and share-locks `userId`'s cards among a list; a setup error for names that are not plain identifiers. */
export function ownCardsStatement(cards: CardTable): string {
  for (const name of [cards.table, cards.ownerColumn]) {
    if (!IDENTIFIER.test(name)) throw new Error(`devcard-webhooks: '${name}' is not a plain lower-case SQL identifier (cards option)`);
  }
  return `SELECT id::text FROM "${cards.table}" WHERE "${cards.ownerColumn}" = $1::uuid AND id = ANY($2::uuid[]) FOR KEY SHARE`;
}

/**
 * Refuses card ids that are not cards of `userId`: 400 UNKNOWN_CARD, each such id named by its
 * place in `cardIds`. Another user's card and a card that does not exist get the same answer,
 * so the answer never tells whether someone else's card exists.
 *
 * Run it in the transaction that stores the list: the cards found are share-locked until the
 * commit, so a card deleted meanwhile is either gone before this check (refused) or deleted
 * after the commit, when the host's trigger takes it off the stored list (webhook_endpoints_forget_cards).
 */
export async function assertOwnCards(
  tx: Prisma.TransactionClient,
  statement: string,
  userId: string,
  cardIds: readonly string[],
): Promise<void> {
  if (cardIds.length === 0) return;
  const found = await tx.$queryRawUnsafe<Array<{ id: string }>>(statement, userId, cardIds);
  const own = new Set(found.map((card) => card.id));
  // Named as the routes' own validation names a field of the request body, so clients place it the same way.
  const details = cardIds.flatMap((id, i) => (own.has(id) ? [] : [{ field: `body.cardIds.${i}`, message: 'is not one of your cards' }]));
  const first = details[0];
  if (first) throw new AppError('UNKNOWN_CARD', `${first.field}: ${first.message}`, details);
}
