import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { DeliveryDispatcher } from '../webhooks/dispatch.ts';
import { createDeliveryEngine } from '../webhooks/engine.ts';
import type { LookupFn } from '../webhooks/url-policy.ts';
import type { DeliveryWorker } from '../webhooks/worker.ts';

/** What routes and services use to raise events and act on deliveries. */
export interface WebhookEngine {
  dispatch: DeliveryDispatcher['dispatch'];
  withEvents: DeliveryDispatcher['withEvents'];
  dispatchToEndpoint: DeliveryDispatcher['dispatchToEndpoint'];
  redeliver: DeliveryDispatcher['redeliver'];
  sendTestEvent: DeliveryDispatcher['sendTestEvent'];
  /**
   * An endpoint's url, secrets or isActive changed, or it was deleted (committed): the
   * in-process worker starts nothing more with what it held of it.
   */
  endpointChanged(endpointId: string): void;
  /** The in-process worker; absent with WEBHOOK_WORKER=off (worker processes deliver). */
  worker?: DeliveryWorker;
}

declare module 'fastify' {
  interface FastifyInstance {
    webhooks: WebhookEngine;
  }
}

/**
 * The delivery engine's lifecycle in the API process: the worker starts when the app is
 * ready and stops (finishing or releasing its attempts) when the app closes, before the
 * database plugin closes the store.
 */
export const webhookEnginePlugin = fp(
  async (app: FastifyInstance, opts: { lookup?: LookupFn }) => {
    const engine = createDeliveryEngine({
      db: app.db,
      config: app.config,
      logger: app.log.child({ module: 'webhooks' }),
      deliver: app.config.webhooks.workerEnabled,
      lookup: opts.lookup,
      registry: app.metrics,
    });
    const { dispatcher } = engine;
    app.decorate('webhooks', {
      dispatch: dispatcher.dispatch.bind(dispatcher),
      withEvents: dispatcher.withEvents.bind(dispatcher),
      dispatchToEndpoint: dispatcher.dispatchToEndpoint.bind(dispatcher),
      redeliver: dispatcher.redeliver.bind(dispatcher),
      sendTestEvent: dispatcher.sendTestEvent.bind(dispatcher),
      endpointChanged: (endpointId) => engine.worker?.endpointChanged(endpointId),
      ...(engine.worker && { worker: engine.worker }),
    } satisfies WebhookEngine);
    app.addHook('onReady', async () => engine.start());
    app.addHook('onClose', async () => engine.stop());
  },
  { name: 'webhook-engine', dependencies: ['database', 'metrics'] },
);
