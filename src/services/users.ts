import { z } from 'zod';
import { AppError } from '../errors.ts';
import { isPrismaError } from '../db/prisma-errors.ts';
import type { Prisma, PrismaClient, User } from '../generated/prisma/client.ts';
import { uuidSchema } from '../ids.ts';
import { hashPassword, verifyDummyPassword, verifyPassword } from './passwords.ts';

/** Accounts: registration, login, and the user shape the API shows. */

/** Usernames as typed; they are stored lowercased, so `[a-z0-9_]{3,30}`. */
export const USERNAME_PATTERN = /^[A-Za-z0-9_]{3,30}$/;
export const PASSWORD_MIN = 8;
export const PASSWORD_MAX = 128;
const EMAIL_MAX = 254;
const DISPLAY_NAME_MAX = 100;

// Emails and usernames are stored lowercased, so the unique constraints are case-insensitive.
const email = z
  .string()
  .trim()
  .toLowerCase()
  .max(EMAIL_MAX, `must be at most ${EMAIL_MAX} characters`)
  .pipe(z.email('must be a valid email address'));
const username = z.string().trim().regex(USERNAME_PATTERN, 'must be 3 to 30 characters: letters, digits or underscores').toLowerCase();
const password = z
  .string()
  .min(PASSWORD_MIN, `must be at least ${PASSWORD_MIN} characters`)
  .max(PASSWORD_MAX, `must be at most ${PASSWORD_MAX} characters`);

export const registerInput = z.strictObject({
  email,
  username,
  password,
  displayName: z.string().trim().min(1, 'must not be empty').max(DISPLAY_NAME_MAX).optional(),
});
export type RegisterInput = z.output<typeof registerInput>;

export const loginInput = z.strictObject({
  login: z.string().trim().toLowerCase().min(1, 'email or username is required').max(EMAIL_MAX),
  password: z.string().min(1, 'password is required').max(PASSWORD_MAX),
});
export type LoginInput = z.output<typeof loginInput>;

/** What the API shows of an account to its owner; never the password hash. */
export const userSchema = z.object({
  id: uuidSchema,
  email: z.string(),
  username: z.string(),
  displayName: z.string(),
  createdAt: z.date(),
});
export type PublicUser = z.infer<typeof userSchema>;

export function toPublicUser(user: User): PublicUser {
  return { id: user.id, email: user.email, username: user.username, displayName: user.displayName, createdAt: user.createdAt };
}

/**
 * Creates an account. The unique constraints on email and username are the real guard
 * (concurrent registrations race past any pre-check); the pre-check only picks the error
 * when both are taken and spares a password hash for an obvious duplicate.
 */
export async function registerUser(prisma: PrismaClient, input: RegisterInput): Promise<PublicUser> {
  const existing = await prisma.user.findFirst({
    where: { OR: [{ email: input.email }, { username: input.username }] },
    select: { email: true },
  });
  if (existing) throw new AppError(existing.email === input.email ? 'EMAIL_TAKEN' : 'USERNAME_TAKEN');

  const passwordHash = await hashPassword(input.password);
  try {
    const user = await prisma.user.create({
      data: { email: input.email, username: input.username, displayName: input.displayName ?? input.username, passwordHash },
    });
    return toPublicUser(user);
  } catch (error) {
    if (isPrismaError(error, 'P2002')) {
      throw new AppError(violatedColumn(error) === 'email' ? 'EMAIL_TAKEN' : 'USERNAME_TAKEN');
    }
    throw error;
  }
}

/**
 * Which unique column a P2002 names. Drivers report it differently: the embedded store's
 * adapter gives `constraint.fields`, `pg` gives the index name (`users_email_key`).
 */
function violatedColumn(error: Prisma.PrismaClientKnownRequestError): 'email' | 'username' {
  const cause = (error.meta?.driverAdapterError as { cause?: { constraint?: unknown } } | undefined)?.cause;
  const target = JSON.stringify([error.meta?.target, cause?.constraint]);
  return /\bemail\b|_email_/.test(target) ? 'email' : 'username';
}

/**
 * Login by email or username (a username never contains `@`). An unknown login costs the same
 * scrypt work as a wrong password and gets the same error, so neither reveals which accounts exist.
 */
export async function loginUser(prisma: PrismaClient, input: LoginInput): Promise<PublicUser> {
  const where = input.login.includes('@') ? { email: input.login } : { username: input.login };
  const user = await prisma.user.findUnique({ where });
  const ok = user ? await verifyPassword(input.password, user.passwordHash) : await verifyDummyPassword(input.password);
  if (!user || !ok) throw new AppError('INVALID_CREDENTIALS');
  return toPublicUser(user);
}
