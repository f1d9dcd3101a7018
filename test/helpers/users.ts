import type { FastifyInstance, InjectOptions } from 'fastify';
import { hashPassword } from '../../src/services/passwords.ts';

/** A signed-up user as the API sees them: `auth` is the bearer header. */
export interface Session {
  id: string;
  username: string;
  auth: { authorization: string };
}

/** Every test user's password, so a test (or the browser test) can log in as them. */
export const TEST_PASSWORD = 'password-123';

// Hashed once: scrypt is deliberately slow, and a test may sign up dozens of users.
let passwordHash: Promise<string> | undefined;

let counter = 0;

/** A username no other call returns (within the 3–30 characters usernames allow). */
export function uniqueUsername(prefix = 'user'): string {
  return `${prefix}${++counter}_${Date.now().toString(36).slice(-4)}`;
}

/**
 * A user with `username` (a fresh one by default) who can log in with TEST_PASSWORD, and a
 * token for them. Written straight to the store, so signing up spends no auth rate limit and
 * needs no auth route (the webhooks module's tests do not depend on the host's); the auth
 * routes have their own tests.
 */
export async function signUp(app: FastifyInstance, username = uniqueUsername()): Promise<Session> {
  passwordHash ??= hashPassword(TEST_PASSWORD);
  const user = await app.db.prisma.user.create({
    data: { email: `${username}@example.com`, username, displayName: username, passwordHash: await passwordHash },
  });
  return { id: user.id, username, auth: { authorization: `Bearer ${app.signToken({ id: user.id, username })}` } };
}

/** `app.inject` as `user` (anonymous without one). */
export function asUser(app: FastifyInstance, user: Session | undefined, options: InjectOptions) {
  return app.inject({ ...options, headers: { ...(user?.auth ?? {}), ...(options.headers ?? {}) } });
}
