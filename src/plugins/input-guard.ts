import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { AppError } from '../errors.ts';

/**
 * PostgreSQL text and jsonb cannot hold U+0000, so a NUL anywhere in the input would reach the
 * database as a 5xx. Rejected up front, for every route, as the client error it is.
 */
export const inputGuardPlugin = fp(
  async (app: FastifyInstance) => {
    app.addHook('preValidation', async (request: FastifyRequest) => {
      for (const [part, value] of [['params', request.params], ['querystring', request.query], ['body', request.body]] as const) {
        if (containsNul(value)) {
          throw new AppError('VALIDATION_ERROR', `${part}: text must not contain NUL characters (\\u0000)`, [
            { field: part, message: 'must not contain NUL characters' },
          ]);
        }
      }
    });
  },
  { name: 'input-guard' },
);

/** Iterative, so a deeply nested body cannot overflow the stack. */
export function containsNul(root: unknown): boolean {
  const pending: unknown[] = [root];
  while (pending.length > 0) {
    const value = pending.pop();
    if (typeof value === 'string') {
      if (value.includes('\u0000')) return true;
    } else if (value !== null && typeof value === 'object') {
      for (const [key, item] of Object.entries(value)) {
        if (key.includes('\u0000')) return true;
        pending.push(item);
      }
    }
  }
  return false;
}
