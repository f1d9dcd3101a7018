import type { RateLimitOptions, RateLimitPluginOptions } from '@fastify/rate-limit';
import type { FastifyRequest } from 'fastify';
import { AppError } from '../errors.ts';

/** Limits are per route (each route's `config.rateLimit`); an exceeded one is the catalogue's 429. */
export const RATE_LIMIT_OPTIONS: RateLimitPluginOptions = {
  global: false,
  errorResponseBuilder: (_request, context) =>
    new AppError('RATE_LIMITED', `Too many requests, retry in ${Math.ceil(context.ttl / 1000)} s`),
};

/**
 * Rate limit per signed-in user. @fastify/rate-limit appends its onRequest hook after the
 * route's own, so a route that authenticates onRequest has verified the token and set
 * `request.user` by the time the key is computed: every token of one user shares one budget.
 * Without a verified user (not reached: authenticate answers 401 first) it keys on the address.
 */
export function perUserRateLimit(maxPerMinute: number): RateLimitOptions {
  return {
    max: maxPerMinute,
    timeWindow: '1 minute',
    keyGenerator: (request: FastifyRequest) => {
      const user = request.user as { id?: unknown } | null | undefined;
      return typeof user?.id === 'string' ? `user:${user.id}` : `ip:${request.ip}`;
    },
  };
}
