import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { AppError, errorResponseSchema } from '../errors.ts';

export const healthRoutes: FastifyPluginAsyncZod = async (app) => {
  app.get(
    '/health',
    {
      schema: {
        tags: ['operations'],
        summary: 'Liveness and database check',
        response: {
          200: z.object({ status: z.literal('ok'), database: z.enum(['postgres', 'embedded']) }),
          503: errorResponseSchema,
        },
      },
    },
    async (request) => {
      try {
        await app.db.sql.query('SELECT 1');
        return { status: 'ok' as const, database: app.db.kind };
      } catch (error) {
        // Whatever the failure, the check says the store cannot serve: answered like any outage.
        request.log.error({ err: error }, 'health check: database unreachable');
        throw new AppError('SERVICE_UNAVAILABLE');
      }
    },
  );
};
