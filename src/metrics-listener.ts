import fastifyRateLimit from '@fastify/rate-limit';
import Fastify, { type FastifyInstance } from 'fastify';
import { serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import { fastifyTrustProxy } from './app.ts';
import { RATE_LIMIT_OPTIONS } from './plugins/rate-limits.ts';
import { errorHandlerPlugin } from './plugins/error-handler.ts';
import { metricsRoutes } from './routes/metrics.ts';

/**
 * The listener of METRICS_PORT: `/metrics` of `app` and nothing else, so the scrape address can
 * stay on an internal interface while the API's listener is public. Same token, rate limit and
 * error shape as on the API's listener. The caller listens and closes it (before `app`).
 */
export async function buildMetricsListener(app: FastifyInstance): Promise<FastifyInstance> {
  const listener = Fastify({ logger: false, trustProxy: fastifyTrustProxy(app.config.trustProxy), forceCloseConnections: 'idle' });
  listener.setValidatorCompiler(validatorCompiler);
  listener.setSerializerCompiler(serializerCompiler);
  listener.decorate('config', app.config);
  listener.decorate('metrics', app.metrics);
  await listener.register(errorHandlerPlugin);
  await listener.register(fastifyRateLimit, RATE_LIMIT_OPTIONS);
  await listener.register(metricsRoutes);
  return listener;
}
