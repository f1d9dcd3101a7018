import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { errorResponseSchema } from '../errors.ts';
import { attemptPageSchema, deliveryDetailSchema, deliveryPageSchema, listAttemptsQuery, listDeliveriesQuery } from '../webhooks/endpoints.ts';
import { perUserRateLimit } from '../plugins/auth.ts';
import { endpointParams, webhookSecurity } from './webhook-endpoints.ts';

/** `/api/webhooks/:id/deliveries`: the delivery log of one of the caller's endpoints. */
export const webhookDeliveryRoutes: FastifyPluginAsyncZod = async (app) => {
  const config = perUserRateLimit(app);
  const tags = ['webhooks'];
  const security = webhookSecurity;
  const e = errorResponseSchema;

  app.get(
    '/:id/deliveries',
    {
      config,
      onRequest: app.authenticate,
      schema: {
        tags,
        summary: "List an endpoint's deliveries, newest first",
        security,
        params: endpointParams,
        querystring: listDeliveriesQuery,
        response: { 200: deliveryPageSchema, 400: e, 401: e, 404: e, 429: e },
      },
    },
    async (request) => app.webhookEndpoints.listDeliveries(request.user.id, request.params.id, request.query),
  );

  app.get(
    '/:id/deliveries/:deliveryId',
    {
      config,
      onRequest: app.authenticate,
      schema: {
        tags,
        summary: 'Get one delivery with its payload and newest attempts',
        security,
        params: endpointParams.extend({ deliveryId: z.string() }),
        response: { 200: deliveryDetailSchema, 401: e, 404: e, 429: e },
      },
    },
    async (request) =>
      app.webhookEndpoints.getDelivery(request.user.id, request.params.id, request.params.deliveryId),
  );

  app.get(
    '/:id/deliveries/:deliveryId/attempts',
    {
      config,
      onRequest: app.authenticate,
      schema: {
        tags,
        summary: "List a delivery's attempts, oldest first",
        security,
        params: endpointParams.extend({ deliveryId: z.string() }),
        querystring: listAttemptsQuery,
        response: { 200: attemptPageSchema, 400: e, 401: e, 404: e, 429: e },
      },
    },
    async (request) =>
      app.webhookEndpoints.listAttempts(request.user.id, request.params.id, request.params.deliveryId, request.query),
  );
};
