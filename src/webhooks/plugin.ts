import type { FastifyInstance, onRequestHookHandler } from 'fastify';
import fp from 'fastify-plugin';
import type { Registry } from 'prom-client';
import type { WebhookConfig } from '../config.ts';
import type { Database } from '../db/database.ts';
import type { DeliveryDispatcher } from './dispatch.ts';
import { EndpointKeyCache } from './delivery/endpoint-keys.ts';
import { DeliveryHealth } from './endpoints/delivery-health.ts';
import { DeliveryLog } from './endpoints/delivery-log.ts';
import { WebhookEndpointService } from './endpoints/endpoint-service.ts';
import type { CardTable } from './endpoints/own-cards.ts';
import { SecretRotation } from './endpoints/secret-rotation.ts';
import { createDeliveryEngine, USER_AGENT } from './delivery/engine.ts';
import { ReceiverCheck } from './receiver-check.ts';
import { webhookRoutes } from './routes/index.ts';
import { SecretBox } from './secrets.ts';
import { WebhookSender } from './delivery/sender.ts';
import type { LookupFn } from './dns-lookup.ts';
import type { DeliveryWorker } from './delivery/delivery-worker.ts';

/** What host routes and services use to raise events and act on deliveries (`app.webhooks`). */
export interface WebhookEngine {
  dispatch: DeliveryDispatcher['dispatch'];
  withEvents: DeliveryDispatcher['withEvents'];
  composeEvent: DeliveryDispatcher['composeEvent'];
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

/** The settings the module reads; the host's whole `Config` fits (src/config.ts documents each). */
export interface WebhooksModuleConfig {
  webhooks: WebhookConfig;
  /** 32-byte AES-256-GCM master key for endpoint secrets at rest. */
  webhookEncryptionKey: Buffer;
  /** PostgreSQL URL the worker LISTENs on; undefined on the embedded store. */
  databaseUrl: string | undefined;
  rateLimits: { apiPerMinute: number };
  metrics: { backlogRefreshMs: number };
}

export interface WebhooksPluginOptions {
  db: Database;
  config: WebhooksModuleConfig;
  /** Where the routes are mounted. */
  prefix?: string;
  /** Name of the host's decorator that authenticates a request (onRequest) and sets `request.user.id`. */
  authenticate?: string;
  /** Where the delivery metrics are registered, if anywhere. */
  registry?: Registry;
  /** DNS resolver for the URL policy and the sender; tests inject one to simulate names and rebinding. */
  lookup?: LookupFn;
  /**
   * Where the host keeps its cards, so an endpoint's `cardIds` can be checked as the user's own
   * (default: `cards`, owner in `owner_id`). The host also wires its card deletes to
   * `webhook_endpoints_forget_cards` (docs/adopting.md).
   */
  cards?: CardTable;
}

export const DEFAULT_PREFIX = '/api/webhooks';

/**
 * The webhooks module as one plugin: builds its parts once (secret box, key cache, delivery
 * engine, endpoint services, receiver check), decorates `app.webhooks`, and mounts its routes
 * under `prefix`. The worker starts when the app is ready and stops (finishing or releasing its
 * attempts) when the app closes; the database is the host's to close, after.
 */
export const webhooksPlugin = fp(
  async (app: FastifyInstance, opts: WebhooksPluginOptions) => {
    const { db, config, lookup } = opts;
    const authenticate = hostDecorator(app, opts.authenticate ?? 'authenticate');

    const secretBox = new SecretBox(config.webhookEncryptionKey);
    const keys = new EndpointKeyCache(secretBox);
    const engine = createDeliveryEngine({
      db,
      config,
      keys,
      logger: app.log.child({ module: 'webhooks' }),
      deliver: config.webhooks.workerEnabled,
      lookup,
      registry: opts.registry,
    });
    const { dispatcher } = engine;
    const endpointChanged = (endpointId: string) => engine.worker?.endpointChanged(endpointId);

    // The self-test sends with the worker's sender; an API process without a worker
    // (WEBHOOK_WORKER=off) has none and builds one for it, with the same delivery settings.
    const sender =
      engine.sender ??
      new WebhookSender({
        timeoutMs: config.webhooks.timeoutMs,
        allowPrivateNetworks: config.webhooks.allowPrivateNetworks,
        lookup,
        userAgent: USER_AGENT,
      });
    const ownsSender = sender !== engine.sender;

    app.decorate('webhooks', {
      dispatch: dispatcher.dispatch.bind(dispatcher),
      withEvents: dispatcher.withEvents.bind(dispatcher),
      composeEvent: dispatcher.composeEvent.bind(dispatcher),
      dispatchToEndpoint: dispatcher.dispatchToEndpoint.bind(dispatcher),
      redeliver: dispatcher.redeliver.bind(dispatcher),
      sendTestEvent: dispatcher.sendTestEvent.bind(dispatcher),
      endpointChanged,
      ...(engine.worker && { worker: engine.worker }),
    } satisfies WebhookEngine);
    app.addHook('onReady', async () => engine.start());
    app.addHook('onClose', async () => {
      await engine.stop();
      if (ownsSender) await sender.close();
    });

    await app.register(webhookRoutes, {
      prefix: opts.prefix ?? DEFAULT_PREFIX,
      authenticate,
      apiPerMinute: config.rateLimits.apiPerMinute,
      services: {
        endpoints: new WebhookEndpointService({ db, config, secretBox, lookup, cards: opts.cards, onEndpointChanged: endpointChanged }),
        secrets: new SecretRotation({ db, secretBox, onEndpointChanged: endpointChanged }),
        deliveryLog: new DeliveryLog({ db, retryScheduleMs: config.webhooks.retryScheduleMs }),
        deliveryHealth: new DeliveryHealth({ db }),
        dispatcher,
        receiverCheck: new ReceiverCheck({ db, keys, sender }),
      },
    });
  },
  { name: 'devcard-webhooks', fastify: '5.x' },
);

/** The host's authenticate hook, by name: registering the module before it is a setup error, said so at once. */
function hostDecorator(app: FastifyInstance, name: string): onRequestHookHandler {
  const hook: unknown = app.hasDecorator(name) ? (app as unknown as Record<string, unknown>)[name] : undefined;
  if (typeof hook !== 'function') {
    throw new Error(`devcard-webhooks: the host has no '${name}' decorator; register its authentication before this plugin`);
  }
  return hook as onRequestHookHandler;
}
