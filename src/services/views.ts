import { z } from 'zod';
import { AppError } from '../errors.ts';
import { Prisma, type PrismaClient } from '../generated/prisma/client.ts';
import type { CardViewedData, ContactSavedData, ViewSource } from '../webhooks/events.ts';

/**
 * What other people do with a user's cards: views and saves. These two functions are where
 * `card.viewed` and `contact.saved` happen; each returns the event's data exactly when the
 * event occurred (a recorded view, a first save), built in one place at the end.
 */

export interface UserRef {
  id: string;
  username: string;
}

export interface ViewInput {
  ownerId: string;
  /** null when the profile page, not a card, was viewed. */
  cardId: string | null;
  /** null for anonymous visitors. */
  viewer: UserRef | null;
  source: ViewSource;
}

export type RecordViewResult = { recorded: false } | { recorded: true; event: CardViewedData };

/** Records a view of someone's profile or card. Owners looking at their own pages are not counted. */
export async function recordView(prisma: PrismaClient, input: ViewInput): Promise<RecordViewResult> {
  const { ownerId, cardId, viewer, source } = input;
  if (viewer?.id === ownerId) return { recorded: false };
  try {
    await prisma.cardView.create({ data: { ownerId, cardId, viewerId: viewer?.id ?? null, source } });
  } catch (error) {
    throw await explainMissingReference(prisma, error, viewer);
  }
  const event: CardViewedData = { userId: ownerId, cardId, viewer: viewer && { id: viewer.id, username: viewer.username }, source };
  return { recorded: true, event };
}

export type SaveCardResult = { created: false } | { created: true; event: ContactSavedData };

/**
 * Saves a card to `saver`'s contacts. Idempotent: the (user, card) pair is unique, so of any
 * number of concurrent saves exactly one creates the row and reports `created: true`.
 *
 * Saving one's own card is refused (400 CANNOT_SAVE_OWN_CARD): a card is not a contact of its
 * owner, and `contact.saved` would tell owners they saved themselves — the same reasoning that
 * keeps self-views out of `card.viewed`.
 */
export async function saveCard(prisma: PrismaClient, saver: UserRef, cardId: string): Promise<SaveCardResult> {
  const notFound = new AppError('NOT_FOUND', 'No such card');
  if (!z.uuid().safeParse(cardId).success) throw notFound;
  const card = await prisma.card.findUnique({ where: { id: cardId }, select: { ownerId: true, isPublic: true } });
  if (!card || (!card.isPublic && card.ownerId !== saver.id)) throw notFound;
  if (card.ownerId === saver.id) throw new AppError('CANNOT_SAVE_OWN_CARD');

  try {
    await prisma.savedCard.create({ data: { userId: saver.id, cardId } });
  } catch (error) {
    if (isPrismaError(error, 'P2002')) return { created: false };
    throw await explainMissingReference(prisma, error, saver);
  }
  const event: ContactSavedData = { userId: card.ownerId, cardId, savedBy: { id: saver.id, username: saver.username } };
  return { created: true, event };
}

function isPrismaError(error: unknown, code: string): error is Prisma.PrismaClientKnownRequestError {
  return error instanceof Prisma.PrismaClientKnownRequestError && error.code === code;
}

/**
 * A foreign-key failure (P2003) means a row vanished under us: the acting user (a token that
 * outlived its account) → 401, otherwise the card or its owner → 404. Anything else is rethrown.
 */
async function explainMissingReference(prisma: PrismaClient, error: unknown, actor: UserRef | null): Promise<unknown> {
  if (!isPrismaError(error, 'P2003')) return error;
  if (actor && !(await prisma.user.findUnique({ where: { id: actor.id }, select: { id: true } }))) {
    return new AppError('INVALID_TOKEN', 'The account of this token no longer exists');
  }
  return new AppError('NOT_FOUND');
}
