import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { errorResponseSchema } from '../errors.ts';
import { perUserRateLimit } from '../plugins/rate-limits.ts';
import { cardSchema, createCard, createCardInput, listOwnCards } from '../services/cards.ts';
import { explainingMissingReferences } from '../services/missing-references.ts';
import { saveCard } from '../services/saves.ts';

const security = [{ bearerAuth: [] }];

/** The signed-in user's cards, and saving other people's cards to their contacts. */
export const cardRoutes: FastifyPluginAsyncZod = async (app) => {
  const config = { rateLimit: perUserRateLimit(app.config.rateLimits.apiPerMinute) };
  app.post(
    '/api/cards',
    {
      config,
      onRequest: app.authenticate,
      schema: {
        tags: ['cards'],
        summary: 'Create a card',
        security,
        body: createCardInput,
        response: { 201: cardSchema, 400: errorResponseSchema, 401: errorResponseSchema, 429: errorResponseSchema },
      },
    },
    async (request, reply) => reply.status(201).send(await createCard(app.db.prisma, request.user.id, request.body)),
  );

  app.get(
    '/api/cards',
    {
      config,
      onRequest: app.authenticate,
      schema: {
        tags: ['cards'],
        summary: "List the caller's cards",
        security,
        response: { 200: z.array(cardSchema), 401: errorResponseSchema, 429: errorResponseSchema },
      },
    },
    async (request) => listOwnCards(app.db.prisma, request.user.id),
  );

  app.post(
    '/api/cards/:id/save',
    {
      config,
      onRequest: app.authenticate,
      schema: {
        tags: ['cards'],
        summary: "Save someone's card to your contacts",
        description:
          'Idempotent: 201 `{saved: true}` the first time (the owner gets `contact.saved`), ' +
          '200 `{alreadySaved: true}` afterwards. Private cards of others are 404; your own card is 400.',
        security,
        params: z.object({ id: z.string() }),
        response: {
          201: z.object({ saved: z.literal(true) }),
          200: z.object({ alreadySaved: z.literal(true) }),
          400: errorResponseSchema,
          401: errorResponseSchema,
          404: errorResponseSchema,
          429: errorResponseSchema,
        },
      },
    },
    async (request, reply) => {
      // The first save and its contact.saved delivery rows commit together, before the response.
      const result = await explainingMissingReferences(app.db.sql, request.user, () =>
        app.webhooks.withEvents(async ({ sql, dispatch }) => {
          const saved = await saveCard(sql, request.user, request.params.id);
          if (saved.created) await dispatch(saved.event.userId, 'contact.saved', saved.event);
          return saved;
        }),
      );
      return result.created ? reply.status(201).send({ saved: true as const }) : reply.status(200).send({ alreadySaved: true as const });
    },
  );
};
