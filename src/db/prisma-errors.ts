import { Prisma } from '../generated/prisma/client.ts';

/** A Prisma error with this code (P2002: a unique constraint, P2025: the row to change is gone). */
export function isPrismaError(error: unknown, code: string): error is Prisma.PrismaClientKnownRequestError {
  return error instanceof Prisma.PrismaClientKnownRequestError && error.code === code;
}
