import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { errorResponseSchema } from '../errors.ts';
import { webhookRateLimit, webhookSecurity as security } from './webhook-endpoints.ts';

const failures = { 401: errorResponseSchema, 404: errorResponseSchema, 409: errorResponseSchema, 429: errorResponseSchema };

/**
 * Actions on an endpoint's deliveries: redeliver one, or send a test event. Both only write a
 * row (due now) and answer 202; the worker makes the HTTP attempt. Another user's endpoint or
 * delivery is the same 404 as a missing one. Registered under the `/api/webhooks` prefix.
 */
export const webhookActionRoutes: FastifyPluginAsyncZod = async (app) => {
  // The same per-user rate limit and authentication as the other /api/webhooks routes.
  const config = webhookRateLimit(app);
  app.post(
    '/:id/deliveries/:deliveryId/redeliver',
    {
      config,
      onRequest: app.authenticate,
      schema: {
        tags: ['webhooks'],
        summary: 'Redeliver a delivery',
        description:
          'Schedules another attempt of this delivery now: same delivery id and `webhook-id`, attempts keep counting. ' +
          'Works on failed, successful and cancelled deliveries of an active endpoint; 409 ENDPOINT_DISABLED otherwise.',
        security,
        params: z.object({ id: z.string(), deliveryId: z.string() }),
        response: { 202: z.object({ deliveryId: z.string() }), ...failures },
      },
    },
    async (request, reply) => {
      const result = await app.webhooks.redeliver({
        userId: request.user.id,
        endpointId: request.params.id,
        deliveryId: request.params.deliveryId,
      });
      return reply.status(202).send(result);
    },
  );

  app.post(
    '/:id/test',
    {
      config,
      onRequest: app.authenticate,
      schema: {
        tags: ['webhooks'],
        summary: 'Send a test event',
        description: 'Sends a `webhook.test` event `{endpointId}` to this endpoint only, whatever it subscribes to.',
        security,
        params: z.object({ id: z.string() }),
        response: { 202: z.object({ deliveryId: z.string() }), ...failures },
      },
    },
    async (request, reply) => {
      const result = await app.webhooks.sendTestEvent({ userId: request.user.id, endpointId: request.params.id });
      return reply.status(202).send(result);
    },
  );
};
