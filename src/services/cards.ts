import { z } from 'zod';
import { AppError } from '../errors.ts';
import type { Card, PrismaClient } from '../generated/prisma/client.ts';
import { uuidSchema } from '../ids.ts';

/** Cards: the owner's create and list, and the public lookups behind /api/u. */

const TEXT_MAX = 100;
export const BIO_MAX = 1000;
const URL_MAX = 2048;

/** An optional free-text field: trimmed; empty, null or absent are all stored as null. */
const optionalText = (max: number) =>
  z
    .string()
    .trim()
    .max(max, `must be at most ${max} characters`)
    .nullish()
    .transform((value) => value || null);

export const createCardInput = z.strictObject({
  title: z.string().trim().min(1, 'title is required').max(TEXT_MAX, `must be at most ${TEXT_MAX} characters`),
  company: optionalText(TEXT_MAX),
  jobTitle: optionalText(TEXT_MAX),
  bio: optionalText(BIO_MAX),
  email: z.string().trim().toLowerCase().max(254).pipe(z.email('must be a valid email address')).nullish(),
  phone: z
    .string()
    .trim()
    .regex(/^\+?[0-9][0-9 ().-]{2,39}$/, 'must be a phone number: digits, spaces, ( ) . - and an optional leading +')
    .nullish(),
  website: z
    .url({ protocol: /^https?$/, error: 'must be an http(s) URL' })
    .max(URL_MAX, `must be at most ${URL_MAX} characters`)
    .nullish(),
  isPublic: z.boolean().default(true),
});
export type CreateCardInput = z.output<typeof createCardInput>;

/** A card as its owner sees it (and as anyone sees a public card). */
export const cardSchema = z.object({
  id: uuidSchema,
  ownerId: uuidSchema,
  title: z.string(),
  company: z.string().nullable(),
  jobTitle: z.string().nullable(),
  bio: z.string().nullable(),
  email: z.string().nullable(),
  phone: z.string().nullable(),
  website: z.string().nullable(),
  isPublic: z.boolean(),
  createdAt: z.date(),
  updatedAt: z.date(),
});
export type CardData = z.infer<typeof cardSchema>;

/** What anyone may see of a user: no email. */
export const profileUserSchema = z.object({
  id: uuidSchema,
  username: z.string(),
  displayName: z.string(),
  createdAt: z.date(),
});
export type ProfileUser = z.infer<typeof profileUserSchema>;

export const publicProfileSchema = z.object({ user: profileUserSchema, cards: z.array(cardSchema) });
export type PublicProfile = z.infer<typeof publicProfileSchema>;

export const publicCardSchema = cardSchema.extend({ owner: profileUserSchema });
export type PublicCard = z.infer<typeof publicCardSchema>;

/**
 * Every miss on a card someone else may see (malformed id, unknown, private, another owner's) is
 * this same 404, so the answer does not reveal whether a private card exists.
 */
export const cardNotFound = () => new AppError('NOT_FOUND', 'No such card');

function toCardData(card: Card): CardData {
  const { id, ownerId, title, company, jobTitle, bio, email, phone, website, isPublic, createdAt, updatedAt } = card;
  return { id, ownerId, title, company, jobTitle, bio, email, phone, website, isPublic, createdAt, updatedAt };
}

export async function createCard(prisma: PrismaClient, ownerId: string, input: CreateCardInput): Promise<CardData> {
  const card = await prisma.card.create({
    data: {
      ownerId,
      title: input.title,
      company: input.company,
      jobTitle: input.jobTitle,
      bio: input.bio,
      email: input.email ?? null,
      phone: input.phone ?? null,
      website: input.website ?? null,
      isPublic: input.isPublic,
    },
  });
  return toCardData(card);
}

export async function listOwnCards(prisma: PrismaClient, ownerId: string): Promise<CardData[]> {
  const cards = await prisma.card.findMany({ where: { ownerId }, orderBy: [{ createdAt: 'asc' }, { id: 'asc' }] });
  return cards.map(toCardData);
}
