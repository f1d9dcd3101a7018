import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { Config } from '../config.ts';
import { AppError } from '../errors.ts';

/** Scrapes per minute per address: Prometheus scrapes every 15 s or so; more is not a scraper. */
export const METRICS_SCRAPES_PER_MINUTE = 60;

/**
 * Whether the API's own listener serves `/metrics`. Not when a metrics listener of its own is
 * configured; in production not without a token either, so an operator who configured neither
 * publishes nothing by accident.
 */
export function metricsOnApiListener(config: Config): boolean {
  if (config.metrics.port !== undefined) return false;
  return config.metrics.token !== undefined || config.nodeEnv !== 'production';
}

/** `Authorization: Bearer <token>` with this token, compared in constant time (digests: equal lengths). */
export function hasBearerToken(authorization: string | undefined, token: string): boolean {
  const match = /^Bearer (.+)$/i.exec(authorization ?? '');
  if (!match) return false;
  const digest = (text: string) => createHash('sha256').update(text).digest();
  return timingSafeEqual(digest(match[1]!), digest(token));
}

/** Prometheus scrape endpoint: default process metrics and the webhook series. */
export const metricsRoutes: FastifyPluginAsyncZod = async (app) => {
  const { token } = app.config.metrics;
  const requireToken = async (request: FastifyRequest) => {
    if (token !== undefined && !hasBearerToken(request.headers.authorization, token)) {
      throw new AppError('UNAUTHORIZED', 'Scraping metrics needs the metrics bearer token');
    }
  };
  app.get(
    '/metrics',
    {
      schema: {
        tags: ['operations'],
        summary: 'Prometheus metrics (text exposition format)',
        description: `Needs \`Authorization: Bearer <METRICS_TOKEN>\` when that is set. At most ${METRICS_SCRAPES_PER_MINUTE} scrapes a minute per address.`,
        produces: ['text/plain'],
      },
      // Checked after the rate limit (onRequest), so guessing tokens is throttled too.
      preHandler: requireToken,
      config: {
        rateLimit: { max: Math.min(app.config.rateLimits.publicPerMinute, METRICS_SCRAPES_PER_MINUTE), timeWindow: '1 minute' },
      },
    },
    async (_request, reply) => {
      const text = await app.metrics.metrics();
      return reply.type(app.metrics.contentType).send(text);
    },
  );
};
