import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { EndpointKeyCache } from '../webhooks/delivery/endpoint-keys.ts';
import { USER_AGENT } from '../webhooks/delivery/engine.ts';
import { ReceiverCheck } from '../webhooks/receiver-check.ts';
import { SecretBox } from '../webhooks/secrets.ts';
import { WebhookSender } from '../webhooks/delivery/sender.ts';
import type { LookupFn } from '../webhooks/url-policy.ts';

declare module 'fastify' {
  interface FastifyInstance {
    /** The receiver self-test (src/webhooks/receiver-check.ts). */
    receiverCheck: ReceiverCheck;
  }
}

/**
 * Decorates `app.receiverCheck`. It has its own sender, with the delivery settings, because an
 * API process without a worker (WEBHOOK_WORKER=off) has none and must still run the self-test.
 */
export const webhookReceiverCheckPlugin = fp(
  async (app: FastifyInstance, opts: { lookup?: LookupFn }) => {
    const sender = new WebhookSender({
      timeoutMs: app.config.webhooks.timeoutMs,
      allowPrivateNetworks: app.config.webhooks.allowPrivateNetworks,
      lookup: opts.lookup,
      userAgent: USER_AGENT,
    });
    const keys = new EndpointKeyCache(new SecretBox(app.config.webhookEncryptionKey));
    app.decorate('receiverCheck', new ReceiverCheck({ db: app.db, keys, sender }));
    app.addHook('onClose', async () => sender.close());
  },
  { name: 'webhook-receiver-check', dependencies: ['database'] },
);
