import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { AppError } from '../errors.ts';
import { isStorableText } from '../storable-text.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The route rejects unstorable text itself, with codes of its own (e.g. URL_NOT_ALLOWED). */
    checksStorableText?: boolean;
  }
}

/**
 * PostgreSQL text and jsonb cannot hold U+0000 (a NUL would reach the database as a 5xx), nor
 * unpaired surrogates faithfully (they would be stored altered). Rejected up front, for every
 * route, as the client error it is.
 */
export const inputGuardPlugin = fp(
  async (app: FastifyInstance) => {
    app.addHook('preValidation', async (request: FastifyRequest) => {
      if (request.routeOptions.config.checksStorableText) return;
      for (const [part, value] of [
        ['params', request.params],
        ['querystring', request.query],
        ['body', request.body],
      ] as const) {
        if (containsUnstorableText(value)) {
          throw new AppError('VALIDATION_ERROR', `${part}: text must not contain NUL characters (\\u0000) or unpaired surrogates`, [
            { field: part, message: 'must not contain NUL characters or unpaired surrogates' },
          ]);
        }
      }
    });
  },
  { name: 'input-guard' },
);

/** Iterative, so a deeply nested body cannot overflow the stack. */
export function containsUnstorableText(root: unknown): boolean {
  const pending: unknown[] = [root];
  while (pending.length > 0) {
    const value = pending.pop();
    if (typeof value === 'string') {
      if (!isStorableText(value)) return true;
    } else if (value !== null && typeof value === 'object') {
      for (const [key, item] of Object.entries(value)) {
        if (!isStorableText(key)) return true;
        pending.push(item);
      }
    }
  }
  return false;
}
