import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { collectDefaultMetrics, Registry } from 'prom-client';

declare module 'fastify' {
  interface FastifyInstance {
    /** Prometheus registry of this app (own per app, so several apps can live in one process). */
    metrics: Registry;
  }
}

/** A Prometheus registry with the process's default metrics; other plugins add their series. */
export const metricsRegistryPlugin = fp(
  async (app: FastifyInstance) => {
    const registry = new Registry();
    collectDefaultMetrics({ register: registry });
    app.decorate('metrics', registry);
  },
  { name: 'metrics' },
);
