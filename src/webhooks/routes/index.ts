import fastifyRateLimit from '@fastify/rate-limit';
import type { FastifyInstance, onRequestAsyncHookHandler, onRequestHookHandler, RouteOptions } from 'fastify';
import { serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import { renderError } from '../../plugins/error-handler.ts';
import { inputGuardPlugin } from '../../plugins/input-guard.ts';
import { perUserRateLimit, RATE_LIMIT_OPTIONS } from '../../plugins/rate-limits.ts';
import { actionRoutes } from './actions.ts';
import { deliveryRoutes } from './deliveries.ts';
import { deliveryHealthRoutes } from './delivery-health.ts';
import { endpointRoutes } from './endpoints.ts';
import { eventTypeRoutes } from './event-types.ts';
import type { WebhookServices } from './shared.ts';

export interface WebhookRoutesOptions {
  services: WebhookServices;
  /** The host's hook that signs a request in (sets `request.user.id`) or answers 401. */
  authenticate: onRequestHookHandler | onRequestAsyncHookHandler;
  /** Requests per minute per user on each route (a route may ask for fewer, `config.maxPerUserPerMinute`). */
  apiPerMinute: number;
}

/**
 * Every webhooks route, in one encapsulated scope that sets what they have in common, whatever
 * the host app does elsewhere: the catalogue's error shape, zod validation and serialization,
 * the storable-text guard, authentication, and a per-user rate limit.
 */
export async function webhookRoutes(app: FastifyInstance, opts: WebhookRoutesOptions): Promise<void> {
  app.setErrorHandler(renderError);
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  // The host's, when it has them; otherwise this scope's own.
  if (!app.hasPlugin('input-guard')) await app.register(inputGuardPlugin);
  if (!app.hasDecorator('rateLimit')) await app.register(fastifyRateLimit, RATE_LIMIT_OPTIONS);

  // A scope hook runs before any route-level one: authentication comes before body validation (an
  // anonymous caller always gets 401) and before the rate limit, whose key is the signed-in user.
  app.addHook('onRequest', opts.authenticate);
  // A limiter per route, so each route has its own budget per user.
  app.addHook('onRoute', (route: RouteOptions) => {
    const max = Math.min(opts.apiPerMinute, route.config?.maxPerUserPerMinute ?? Number.POSITIVE_INFINITY);
    const own = route.onRequest === undefined ? [] : [route.onRequest].flat();
    route.onRequest = [...own, app.rateLimit(perUserRateLimit(max)) as onRequestAsyncHookHandler];
  });

  await app.register(eventTypeRoutes);
  await app.register(endpointRoutes, { services: opts.services });
  await app.register(deliveryRoutes, { services: opts.services });
  await app.register(deliveryHealthRoutes, { services: opts.services });
  await app.register(actionRoutes, { services: opts.services });
}
