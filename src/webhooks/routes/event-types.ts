import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { errorResponseSchema } from '../../errors.ts';
import { eventCatalogue } from '../event-catalogue.ts';
import { webhookSecurity as security, webhookTags as tags } from './shared.ts';

const envelopeSchema = z.object({ id: z.string(), type: z.string(), timestamp: z.string(), data: z.record(z.string(), z.unknown()) });
const jsonSchema = z.record(z.string(), z.unknown());

const eventTypeSchema = z.object({
  type: z.string(),
  description: z.string(),
  schema: jsonSchema.describe('The JSON Schema (draft 2020-12) of the body'),
  example: envelopeSchema,
  coalescedSchema: jsonSchema
    .optional()
    .describe('card.viewed only: the JSON Schema of the body an endpoint with coalesceSeconds > 0 gets for several views of one card'),
  coalescedExample: envelopeSchema
    .optional()
    .describe('card.viewed only: the body an endpoint with coalesceSeconds > 0 gets for several views of one card'),
});

/** `/api/webhooks/event-types`: the events an endpoint can subscribe to, for the portal and for receivers. */
export const eventTypeRoutes: FastifyPluginAsyncZod = async (app) => {
  app.get(
    '/event-types',
    {
      schema: {
        tags,
        summary: 'List the event types an endpoint can subscribe to, with the JSON Schema and a sample of each body',
        description:
          'Each body is described by a JSON Schema (draft 2020-12) generated from the schemas the service builds it with. ' +
          "The service's OpenAPI document has the same schemas under `webhooks`, with the headers of the request, and the " +
          '`webhook.test` body, which no endpoint subscribes to.',
        security,
        response: { 200: z.array(eventTypeSchema), 401: errorResponseSchema, 429: errorResponseSchema },
      },
    },
    async () => eventCatalogue(),
  );
};
