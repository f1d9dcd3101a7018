import { z } from 'zod';
import { uuidSchema } from '../ids.ts';
import { DEFAULT_TOLERANCE_SECONDS } from './signing.ts';
import type { EventType } from './events.ts';

/**
 * The headers of a webhook request of type `type`, as the OpenAPI `webhooks` publish them
 * (docs/receiving-webhooks.md). The sender sets them (delivery/prepare-request.ts and sender.ts,
 * with signing.ts); test/webhooks/event-schemas.test.ts checks what a receiver gets against this.
 * `content-type` is not here: OpenAPI states it as the request body's media type.
 */
export function webhookRequestHeaders(type: EventType) {
  return z.object({
    'user-agent': z
      .string()
      .regex(/^DevCard-Webhooks\/\S+$/)
      .describe('`DevCard-Webhooks/<version>` (the version of the service)'),
    'x-devcard-event': z.literal(type).describe('The event type'),
    'x-devcard-delivery': uuidSchema.describe('The delivery id, the same as `webhook-id`'),
    'x-devcard-signature': z
      .string()
      .regex(/^sha256=[0-9a-f]{64}(,sha256=[0-9a-f]{64})*$/)
      .describe(
        '`sha256=<hex HMAC-SHA256(key, raw body)>`, where key is the base64-decoded part of the secret after `whsec_`; ' +
          'during a rotation one per valid secret, comma-separated. It signs the body alone, so it does not stop replays: ' +
          'verify `webhook-signature` and `webhook-timestamp`.',
      ),
    'webhook-id': uuidSchema.describe('The delivery id: the same on every retry and redelivery. De-duplicate on it.'),
    'webhook-timestamp': z
      .string()
      .regex(/^\d+$/)
      .describe(
        `The unix seconds of this attempt. Reject one more than ${DEFAULT_TOLERANCE_SECONDS / 60} minutes away from your clock: it stops replays.`,
      ),
    'webhook-signature': z
      .string()
      .regex(/^v1,[A-Za-z0-9+/]{43}=( v1,[A-Za-z0-9+/]{43}=)*$/)
      .describe(
        '[Standard Webhooks](https://www.standardwebhooks.com): `v1,<base64 HMAC-SHA256(key, "<webhook-id>.<webhook-timestamp>.<raw body>")>`; ' +
          'during a rotation one per valid secret, space-separated. Any Standard Webhooks library verifies it.',
      ),
  });
}
