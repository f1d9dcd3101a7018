import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { errorResponseSchema } from '../../errors.ts';
import { deliveryHealthSchema, healthQuery } from '../endpoints/delivery-health.ts';
import { endpointParams, signedInUserId, webhookSecurity as security, webhookTags as tags, type WebhookServices } from './shared.ts';

/** `/api/webhooks/:id/health`: one of the caller's endpoints at a glance, hour by hour. */
export const deliveryHealthRoutes: FastifyPluginAsyncZod<{ services: WebhookServices }> = async (app, { services }) => {
  const e = errorResponseSchema;
  app.get(
    '/:id/health',
    {
      schema: {
        tags,
        summary: "An endpoint's deliveries per hour by outcome, and its attempts' latency",
        description:
          '`window` is `24h` (default) or `7d`: one bucket per hour, oldest first, the last one the current hour (hours are ' +
          'whole UTC hours). Each counts the deliveries created in that hour by status (`success`, `failed`, `cancelled`, ' +
          '`pending`) and gives the median and 95th percentile duration (`p50Ms`, `p95Ms`) of the attempts that started in ' +
          'it, of deliveries created in the window; null when none did.',
        security,
        params: endpointParams,
        querystring: healthQuery,
        response: { 200: deliveryHealthSchema, 400: e, 401: e, 404: e, 429: e },
      },
    },
    async (request) => services.deliveryHealth.get(signedInUserId(request), request.params.id, request.query),
  );
};
