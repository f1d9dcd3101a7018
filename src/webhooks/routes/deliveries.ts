import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { errorResponseSchema } from '../../errors.ts';
import {
  attemptPageSchema,
  deliveryDetailSchema,
  deliveryPageSchema,
  listAttemptsQuery,
  listDeliveriesQuery,
} from '../endpoints/schemas.ts';
import {
  deliveryParams,
  endpointParams,
  signedInUserId,
  webhookSecurity as security,
  webhookTags as tags,
  type WebhookServices,
} from './shared.ts';

/** `/api/webhooks/:id/deliveries`: the delivery log of one of the caller's endpoints. */
export const deliveryRoutes: FastifyPluginAsyncZod<{ services: WebhookServices }> = async (app, { services }) => {
  const log = services.deliveryLog;
  const e = errorResponseSchema;

  app.get(
    '/:id/deliveries',
    {
      schema: {
        tags,
        summary: "List an endpoint's deliveries, newest first",
        security,
        params: endpointParams,
        querystring: listDeliveriesQuery,
        response: { 200: deliveryPageSchema, 400: e, 401: e, 404: e, 429: e },
      },
    },
    async (request) => log.list(signedInUserId(request), request.params.id, request.query),
  );

  app.get(
    '/:id/deliveries/:deliveryId',
    {
      schema: {
        tags,
        summary: 'Get one delivery with its payload and newest attempts',
        security,
        params: deliveryParams,
        response: { 200: deliveryDetailSchema, 401: e, 404: e, 429: e },
      },
    },
    async (request) => log.get(signedInUserId(request), request.params.id, request.params.deliveryId),
  );

  app.get(
    '/:id/deliveries/:deliveryId/attempts',
    {
      schema: {
        tags,
        summary: "List a delivery's attempts, oldest first",
        security,
        params: deliveryParams,
        querystring: listAttemptsQuery,
        response: { 200: attemptPageSchema, 400: e, 401: e, 404: e, 429: e },
      },
    },
    async (request) => log.listAttempts(signedInUserId(request), request.params.id, request.params.deliveryId, request.query),
  );
};
