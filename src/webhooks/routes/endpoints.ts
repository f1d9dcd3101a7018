import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { errorResponseSchema } from '../../errors.ts';
import {
  createdEndpointSchema,
  createEndpointInput,
  endpointDetailSchema,
  endpointSchema,
  rotatedSecretSchema,
  rotateSecretInput,
  updateEndpointInput,
} from '../endpoints/schemas.ts';
import {
  EXTEND_MAX_HOURS,
  extendedPreviousSecretSchema,
  extendPreviousSecretInput,
  PREVIOUS_SECRET_KEPT_AFTER_EXPIRY_MS,
} from '../secret-overlap.ts';
import { endpointParams, signedInUserId, webhookSecurity as security, webhookTags as tags, type WebhookServices } from './shared.ts';

/** `/api/webhooks`: the signed-in user's endpoints and their secrets. Another user's endpoint is a 404. */
export const endpointRoutes: FastifyPluginAsyncZod<{ services: WebhookServices }> = async (app, { services }) => {
  const { endpoints, secrets } = services;
  const e = errorResponseSchema;

  app.post(
    '',
    {
      config: { checksStorableText: true },
      schema: {
        tags,
        summary: 'Register a webhook endpoint',
        description:
          'The answer carries the signing `secret`; it is shown this once. The URL must be https and ' +
          'must not be, or resolve to, a private address (400 `URL_NOT_ALLOWED`). 409 `ENDPOINT_LIMIT_REACHED` ' +
          'past the per-user limit, 409 `ENDPOINT_URL_EXISTS` for a URL you already registered. ' +
          '`coalesceSeconds` (0–3600, default 0) turns views of one card within that window into one `card.viewed` delivery. ' +
          '`cardIds` limits the endpoint to the events of those of your cards (400 `UNKNOWN_CARD` for an id that is not one of them). ' +
          '`maxPerSecond` (1–1000, default null: none) paces the attempts to it; the rest wait their turn in the queue.',
        security,
        body: createEndpointInput,
        response: { 201: createdEndpointSchema, 400: e, 401: e, 409: e, 413: e, 415: e, 429: e },
      },
    },
    async (request, reply) => reply.status(201).send(await endpoints.create(signedInUserId(request), request.body)),
  );

  app.get(
    '',
    {
      schema: {
        tags,
        summary: 'List your webhook endpoints',
        security,
        response: { 200: z.array(endpointSchema), 401: e, 429: e },
      },
    },
    async (request) => endpoints.list(signedInUserId(request)),
  );

  app.get(
    '/:id',
    {
      schema: {
        tags,
        summary: 'Get one webhook endpoint',
        description:
          '`nextAttemptAt` is when its earliest pending delivery is due (null when none is pending). `secretFingerprint` ' +
          'names the current secret. `previousSecretOverlap` describes the previous secret of a rotation while it is kept; ' +
          'when the receiver still seems to verify with it (`receiverOnPreviousSecret`), `message` offers extending the overlap.',
        security,
        params: endpointParams,
        response: { 200: endpointDetailSchema, 401: e, 404: e, 429: e },
      },
    },
    async (request) => endpoints.getDetail(signedInUserId(request), request.params.id),
  );

  app.patch(
    '/:id',
    {
      config: { checksStorableText: true },
      schema: {
        tags,
        summary: 'Update a webhook endpoint',
        description:
          '`isActive: false` pauses the endpoint and cancels its pending deliveries; `isActive: true` ' +
          're-enables it and resets `consecutiveFailures`. A new URL is checked like at registration. ' +
          'A new `coalesceSeconds` or `cardIds` applies to events from then on; a new `maxPerSecond` to the next attempts.',
        security,
        params: endpointParams,
        body: updateEndpointInput,
        response: { 200: endpointSchema, 400: e, 401: e, 404: e, 409: e, 413: e, 415: e, 429: e },
      },
    },
    async (request) => endpoints.update(signedInUserId(request), request.params.id, request.body),
  );

  app.delete(
    '/:id',
    {
      schema: {
        tags,
        summary: 'Delete a webhook endpoint',
        description: 'Its deliveries go with it; pending ones are never attempted.',
        security,
        params: endpointParams,
        response: { 204: z.null().describe('Deleted'), 401: e, 404: e, 429: e },
      },
    },
    async (request, reply) => {
      await endpoints.delete(signedInUserId(request), request.params.id);
      return reply.status(204).send(null);
    },
  );

  app.patch(
    '/:id/rotate-secret',
    {
      schema: {
        tags,
        summary: "Rotate an endpoint's signing secret",
        description:
          'Returns the new secret (shown this once). The old secret keeps signing alongside it until ' +
          '`previousSecretExpiresAt` (`gracePeriodSeconds`, default 86400, at most 604800; 0 revokes it at once).',
        security,
        params: endpointParams,
        body: rotateSecretInput,
        response: { 200: rotatedSecretSchema, 400: e, 401: e, 404: e, 413: e, 415: e, 429: e },
      },
    },
    async (request) => secrets.rotate(signedInUserId(request), request.params.id, request.body),
  );

  app.post(
    '/:id/extend-previous-secret',
    {
      schema: {
        tags,
        summary: 'Sign with the previous secret again, for a receiver still on it',
        description:
          `The previous secret of the last rotation signs again beside the current one for \`hours\` (1–${EXTEND_MAX_HOURS}) ` +
          'from now, or keeps its later expiry. Possible while the previous secret is kept: until ' +
          `${PREVIOUS_SECRET_KEPT_AFTER_EXPIRY_MS / 86_400_000} days after it stopped signing. 409 \`NO_PREVIOUS_SECRET\` when ` +
          'none is kept (never rotated, rotated with `gracePeriodSeconds: 0`, or forgotten).',
        security,
        params: endpointParams,
        body: extendPreviousSecretInput,
        response: { 200: extendedPreviousSecretSchema, 400: e, 401: e, 404: e, 409: e, 413: e, 415: e, 429: e },
      },
    },
    async (request) => secrets.extendPrevious(signedInUserId(request), request.params.id, request.body),
  );
};
