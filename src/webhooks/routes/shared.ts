import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import { AppError } from '../../errors.ts';
import type { DeliveryDispatcher } from '../dispatch.ts';
import type { DeliveryHealth } from '../endpoints/delivery-health.ts';
import type { DeliveryLog } from '../endpoints/delivery-log.ts';
import type { WebhookEndpointService } from '../endpoints/endpoint-service.ts';
import type { SecretRotation } from '../endpoints/secret-rotation.ts';
import type { ReceiverCheck } from '../receiver-check.ts';

/** What every route file of the module shares: its OpenAPI security and tag, the `:id` params, the signed-in user. */

declare module 'fastify' {
  interface FastifyContextConfig {
    /** A webhooks route's own per-user budget, when smaller than the API's (routes/index.ts applies it). */
    maxPerUserPerMinute?: number;
  }
}

/** The module's parts the routes call, built once by plugin.ts. */
export interface WebhookServices {
  endpoints: WebhookEndpointService;
  secrets: SecretRotation;
  deliveryLog: DeliveryLog;
  deliveryHealth: DeliveryHealth;
  dispatcher: Pick<DeliveryDispatcher, 'redeliver' | 'sendTestEvent' | 'recover'>;
  receiverCheck: ReceiverCheck;
}

export const webhookSecurity = [{ bearerAuth: [] }];
export const webhookTags = ['webhooks'];

export const endpointParams = z.object({ id: z.string() });
export const deliveryParams = endpointParams.extend({ deliveryId: z.string() });

/**
 * The user the host's authenticate hook signed in: all the module asks of it is `request.user.id`
 * (a UUID, the `users.id` the endpoints belong to). A host hook that set none is a 401, not a 5xx.
 */
export function signedInUserId(request: FastifyRequest): string {
  const { user } = request as { user?: { id?: unknown } | null };
  if (typeof user?.id !== 'string') throw new AppError('UNAUTHORIZED');
  return user.id;
}
