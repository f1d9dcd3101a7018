import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { errorResponseSchema } from '../../errors.ts';
import { recoveredSchema, recoverInput } from '../endpoints/recover-window.ts';
import { receiverCheckSchema, STALE_PROBE_AGE_SECONDS } from '../receiver-check.ts';
import {
  deliveryParams,
  endpointParams,
  signedInUserId,
  webhookSecurity as security,
  webhookTags as tags,
  type WebhookServices,
} from './shared.ts';

/** The self-test makes three outbound requests per call, so it gets a smaller budget than the other routes. */
export const VERIFY_RECEIVER_PER_MINUTE = 10;

const failures = { 401: errorResponseSchema, 404: errorResponseSchema, 409: errorResponseSchema, 429: errorResponseSchema };

/**
 * Actions on an endpoint: redeliver a delivery, recover the failed deliveries of a window, or send
 * a test event (these only write rows and answer 202; the worker makes the HTTP attempts), and the
 * receiver self-test, which sends its probes during the request. Another user's endpoint or
 * delivery is the same 404 as a missing one. Registered under the `/api/webhooks` prefix.
 */
export const actionRoutes: FastifyPluginAsyncZod<{ services: WebhookServices }> = async (app, { services }) => {
  const { dispatcher, receiverCheck } = services;
  app.post(
    '/:id/deliveries/:deliveryId/redeliver',
    {
      schema: {
        tags,
        summary: 'Redeliver a delivery',
        description:
          'Schedules another attempt of this delivery now: same delivery id and `webhook-id`, attempts keep counting. ' +
          'Works on failed, successful and cancelled deliveries of an active endpoint; 409 ENDPOINT_DISABLED otherwise. ' +
          'A delivery has at most WEBHOOK_MAX_ATTEMPTS_PER_DELIVERY attempts, redeliveries included: past it, 409 ATTEMPT_LIMIT_REACHED.',
        security,
        params: deliveryParams,
        response: { 202: z.object({ deliveryId: z.string() }), ...failures },
      },
    },
    async (request, reply) => {
      const result = await dispatcher.redeliver({
        userId: signedInUserId(request),
        endpointId: request.params.id,
        deliveryId: request.params.deliveryId,
      });
      return reply.status(202).send(result);
    },
  );

  app.post(
    '/:id/recover',
    {
      schema: {
        tags,
        summary: 'Send the failed deliveries of a time window again',
        description:
          'After an outage of your receiver: every failed delivery of this endpoint created from `since` to `until` ' +
          "(default: now) gets another attempt, oldest first, at the pace of the endpoint's concurrency: same delivery ids " +
          'and `webhook-id`, attempts keep counting. Deliveries that have had WEBHOOK_MAX_ATTEMPTS_PER_DELIVERY attempts are ' +
          'left alone and counted in `skipped`. 400 VALIDATION_ERROR for a window that is not ISO 8601, is empty or ' +
          'reversed, or reaches into the future; 400 WINDOW_BEYOND_RETENTION when `since` is older than ' +
          'WEBHOOK_RETENTION_DAYS; 409 ENDPOINT_DISABLED for a disabled endpoint.',
        security,
        params: endpointParams,
        body: recoverInput,
        response: { 202: recoveredSchema, 400: errorResponseSchema, 413: errorResponseSchema, 415: errorResponseSchema, ...failures },
      },
    },
    async (request, reply) => {
      const result = await dispatcher.recover({ userId: signedInUserId(request), endpointId: request.params.id, window: request.body });
      return reply.status(202).send(result);
    },
  );

  app.post(
    '/:id/test',
    {
      schema: {
        tags,
        summary: 'Send a test event',
        description: 'Sends a `webhook.test` event `{endpointId}` to this endpoint only, whatever it subscribes to.',
        security,
        params: endpointParams,
        response: { 202: z.object({ deliveryId: z.string() }), ...failures },
      },
    },
    async (request, reply) => {
      const result = await dispatcher.sendTestEvent({ userId: signedInUserId(request), endpointId: request.params.id });
      return reply.status(202).send(result);
    },
  );

  app.post(
    '/:id/verify-receiver',
    {
      config: { maxPerUserPerMinute: VERIFY_RECEIVER_PER_MINUTE },
      schema: {
        tags,
        summary: 'Check that your receiver verifies signatures',
        description:
          'Sends this endpoint three `webhook.test` requests now and reports how it answered each: `valid` (correctly ' +
          `signed), \`bad_signature\` (signed with a wrong key) and \`stale_timestamp\` (correctly signed, ` +
          `\`webhook-timestamp\` ${STALE_PROBE_AGE_SECONDS / 60} minutes old). A receiver should accept (2xx) the first and ` +
          'reject (4xx) the others. The probes go the way deliveries do (address check at connect time, ' +
          '`WEBHOOK_TIMEOUT_MS`, no redirects) but are a synchronous diagnostic, not deliveries: they are not logged, ' +
          'retried or counted as failures. `verdict`: `ok`, `does_not_check_signatures`, `does_not_check_timestamps`, ' +
          `\`rejects_valid\` or \`unreachable\`; \`message\` says it in a sentence. At most ${VERIFY_RECEIVER_PER_MINUTE} calls ` +
          'per minute per user.',
        security,
        params: endpointParams,
        response: { 200: receiverCheckSchema, ...failures },
      },
    },
    async (request) => receiverCheck.run(signedInUserId(request), request.params.id),
  );
};
