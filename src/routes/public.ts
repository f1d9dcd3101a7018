import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { errorResponseSchema } from '../errors.ts';
import { publicCardSchema, publicProfileSchema } from '../services/cards.ts';
import { viewCard, viewProfile, type ViewEvent } from '../services/views.ts';
import { VIEW_SOURCES } from '../webhooks/events.ts';

// Not strict: shared links may carry other query parameters (utm_source…), which are ignored.
const viewQuery = z.object({
  source: z.enum(VIEW_SOURCES, { error: `must be one of ${VIEW_SOURCES.join(', ')}` }).default('link'),
});

const description =
  'Anyone may call this; a bearer token, if sent, must be valid and identifies the viewer. ' +
  'Each call by someone other than the owner is recorded as a view and fires `card.viewed` for the owner.';
// Optional auth in OpenAPI terms: anonymous, or a bearer token.
const security: Array<Record<string, string[]>> = [{}, { bearerAuth: [] }];

/**
 * The public pages: a profile and its cards. A private card is visible to its owner only;
 * everything else that does not exist, or is not theirs to see, is the same 404.
 */
export const publicRoutes: FastifyPluginAsyncZod = async (app) => {
  const config = { rateLimit: { max: app.config.rateLimits.publicPerMinute, timeWindow: '1 minute' } };
  const failures = { 400: errorResponseSchema, 401: errorResponseSchema, 404: errorResponseSchema, 429: errorResponseSchema };
  // A recorded view and its card.viewed delivery rows are one statement, run before the response.
  const event: ViewEvent = (data, at) => app.webhooks.composeEvent('card.viewed', data, at);

  // Static `card` outranks `:username` in Fastify's router, so a user named "card" still has
  // a profile at /api/u/card, and their cards are at /api/u/card/card/:cardId.
  app.get(
    '/api/u/card/:cardId',
    {
      config,
      preHandler: app.identifyViewer,
      schema: {
        tags: ['public'],
        summary: 'View a card by id',
        description,
        security,
        params: z.object({ cardId: z.string() }),
        querystring: viewQuery,
        response: { 200: publicCardSchema, ...failures },
      },
    },
    async (request) => {
      const { viewer, query } = request;
      return viewCard(app.db.grouped, request.params.cardId, { viewer, source: query.source }, event);
    },
  );

  app.get(
    '/api/u/:username',
    {
      config,
      preHandler: app.identifyViewer,
      schema: {
        tags: ['public'],
        summary: "View a user's profile and public cards",
        description,
        security,
        params: z.object({ username: z.string() }),
        querystring: viewQuery,
        response: { 200: publicProfileSchema, ...failures },
      },
    },
    async (request) => {
      const { viewer, query } = request;
      return viewProfile(app.db.grouped, request.params.username, { viewer, source: query.source }, event);
    },
  );

  app.get(
    '/api/u/:username/card/:cardId',
    {
      config,
      preHandler: app.identifyViewer,
      schema: {
        tags: ['public'],
        summary: "View one of a user's cards",
        description,
        security,
        params: z.object({ username: z.string(), cardId: z.string() }),
        querystring: viewQuery,
        response: { 200: publicCardSchema, ...failures },
      },
    },
    async (request) => {
      const { viewer, query, params } = request;
      return viewCard(app.db.grouped, params.cardId, { viewer, source: query.source, username: params.username }, event);
    },
  );
};
