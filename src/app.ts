import fastifyHelmet from '@fastify/helmet';
import fastifyRateLimit from '@fastify/rate-limit';
import fastifySwagger, { type FastifyDynamicSwaggerOptions } from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { jsonSchemaTransform, serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import type { Config, TrustProxy } from './config.ts';
import { openDatabase, type Database } from './db/database.ts';
import { authPlugin } from './plugins/auth.ts';
import { configPlugin } from './plugins/config.ts';
import { databasePlugin } from './plugins/database.ts';
import { errorHandlerPlugin, frameworkErrorHandler } from './plugins/error-handler.ts';
import { inputGuardPlugin } from './plugins/input-guard.ts';
import { metricsRegistryPlugin } from './plugins/metrics-registry.ts';
import { RATE_LIMIT_OPTIONS } from './plugins/rate-limits.ts';
import { authRoutes } from './routes/auth.ts';
import { cardRoutes } from './routes/cards.ts';
import { healthRoutes } from './routes/health.ts';
import { metricsOnApiListener, metricsRoutes } from './routes/metrics.ts';
import { portalRoutes } from './routes/portal.ts';
import { publicRoutes } from './routes/public.ts';
import type { LookupFn } from './webhooks/dns-lookup.ts';
import { openApiWebhooks } from './webhooks/openapi-webhooks.ts';
import { webhooksPlugin } from './webhooks/plugin.ts';

export interface AppOptions {
  config: Config;
  /** An already-open database (tests, several apps on one store); otherwise opened from config. */
  db?: Database;
  logger?: FastifyServerOptions['logger'];
  /** Where the default logger writes (stdout when absent); tests capture the logs with it. */
  logStream?: { write(line: string): void };
  /** DNS resolver for the webhook URL policy; tests inject one to simulate names and rebinding. */
  lookup?: LookupFn;
}

export const BODY_LIMIT_BYTES = 64 * 1024;
export const APP_VERSION = '0.1.0';

/**
 * Log redaction: tokens, passwords and endpoint secrets never reach the logs, whether a log
 * call passes the request, its headers or its body, at the top level or one level down.
 */
const LOG_REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  'headers.cookie',
  '*.headers.authorization',
  '*.headers.cookie',
  ...['password', 'secret', 'token'].flatMap((key) => [key, `*.${key}`, `body.*.${key}`]),
];

/**
 * TRUST_PROXY as Fastify's `trustProxy`. Fastify 5.12 reads a bare number as "trust nothing"
 * (a hop count cannot tell a proxy from a client that reached the listener directly), so a hop
 * count is given as proxy-addr's (address, hop) predicate: the documented meaning, for a
 * listener only the proxies can reach. Lists go to proxy-addr as they are.
 */
export function fastifyTrustProxy(trust: TrustProxy): FastifyServerOptions['trustProxy'] {
  if (typeof trust !== 'number') return trust;
  return (_address: string, hop: number) => hop < trust;
}

/**
 * Assembles the service: external plugins (security headers, rate limits, OpenAPI), then the
 * app's own plugins (config, database, auth, metrics registry), then routes.
 */
export async function buildApp(options: AppOptions): Promise<FastifyInstance> {
  const { config } = options;
  const app = Fastify({
    logger: options.logger ?? { level: config.logLevel, redact: LOG_REDACT_PATHS, ...(options.logStream && { stream: options.logStream }) },
    bodyLimit: BODY_LIMIT_BYTES,
    // Behind a proxy the client address comes from X-Forwarded-For, but only from the peers
    // TRUST_PROXY names: rate limits key on this address, so a client must not pick its own.
    trustProxy: fastifyTrustProxy(config.trustProxy),
    forceCloseConnections: 'idle',
    frameworkErrors: frameworkErrorHandler,
  }).withTypeProvider<ZodTypeProvider>();
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  // JSON only: Fastify's default text/plain parser would hand a string to validation (a 400);
  // any other body type is answered 415 UNSUPPORTED_MEDIA_TYPE.
  app.removeContentTypeParser('text/plain');

  await app.register(errorHandlerPlugin);
  await app.register(inputGuardPlugin);
  await app.register(fastifyHelmet, {
    // Pages set their own policies: the OpenAPI UI at /docs (swagger-ui's, with hashes for its
    // inline scripts) and the portal (src/routes/portal.ts). The JSON API needs none.
    contentSecurityPolicy: false,
  });
  await app.register(fastifyRateLimit, RATE_LIMIT_OPTIONS);
  // 3.1, for its `webhooks`: the requests the service sends, beside the routes it serves.
  const { webhooks, schemas } = openApiWebhooks();
  const openapi = {
    openapi: '3.1.0',
    info: { title: 'DevCard API', description: 'DevCard host and webhooks API', version: APP_VERSION },
    components: { securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } }, schemas },
    webhooks,
  };
  await app.register(fastifySwagger, {
    // zod's JSON Schema type and openapi-types' SchemaObject type the same JSON differently
    // (openapi-types splits schemas by their `type`); test/routes/openapi.test.ts checks the document.
    openapi: openapi as FastifyDynamicSwaggerOptions['openapi'],
    transform: jsonSchemaTransform,
  });
  await app.register(fastifySwaggerUi, {
    routePrefix: '/docs',
    // The UI's own policy: scripts from this origin only (its inline ones by hash). It shares the
    // portal's origin, and so its sessionStorage token: it must not run injected script. Two
    // changes to swagger-ui's policy: inline styles allowed (the UI sets some; styles cannot
    // read the token), and no upgrade-insecure-requests, which breaks a plain-http local run.
    staticCSP: true,
    transformStaticCSP: (header) =>
      header.replace(/\s*upgrade-insecure-requests;?/, '').replace(/style-src ([^;]*);/, "style-src $1 'unsafe-inline';"),
  });

  const db =
    options.db ?? (await openDatabase({ ...config, onConnectionError: (err) => app.log.warn({ err }, 'idle database connection lost') }));
  if (!options.db) await db.migrate();
  await app.register(configPlugin, { config });
  await app.register(databasePlugin, { db, ownsDatabase: !options.db });
  await app.register(authPlugin, { jwtSecret: config.jwtSecret });
  await app.register(metricsRegistryPlugin);
  // Before the routes that raise events; its onClose stops the worker before the store closes.
  await app.register(webhooksPlugin, { db, config, prefix: '/api/webhooks', registry: app.metrics, lookup: options.lookup });

  // Routes, one plugin per area.
  await app.register(healthRoutes);
  if (metricsOnApiListener(config)) await app.register(metricsRoutes);
  await app.register(authRoutes);
  await app.register(cardRoutes);
  await app.register(publicRoutes);
  await app.register(portalRoutes);

  return app;
}
