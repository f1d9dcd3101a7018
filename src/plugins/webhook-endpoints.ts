import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { WebhookEndpointService } from '../webhooks/endpoints.ts';
import { SecretBox } from '../webhooks/secrets.ts';
import type { LookupFn } from '../webhooks/url-policy.ts';

declare module 'fastify' {
  interface FastifyInstance {
    /** The signed-in user's webhook endpoints and their deliveries (src/webhooks/endpoints.ts). */
    webhookEndpoints: WebhookEndpointService;
  }
}

/** Decorates `app.webhookEndpoints`; `lookup` replaces DNS in the URL policy (tests). */
export const webhookEndpointsPlugin = fp(
  async (app: FastifyInstance, opts: { lookup?: LookupFn }) => {
    const service = new WebhookEndpointService({
      db: app.db,
      config: app.config,
      secretBox: new SecretBox(app.config.webhookEncryptionKey),
      lookup: opts.lookup,
      // app.webhooks is decorated by the engine plugin, registered after this one; changes happen in requests, after both.
      onEndpointChanged: (endpointId) => app.webhooks.endpointChanged(endpointId),
    });
    app.decorate('webhookEndpoints', service);
  },
  { name: 'webhook-endpoints', dependencies: ['database'] },
);
