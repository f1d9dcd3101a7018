/** Builds one attempt's signed request from a claimed delivery and the endpoint configuration it is sent with. */
import { createHash } from 'node:crypto';
import type { ClaimedDelivery, SignedParts } from '../queue/types.ts';
import { signWithKeys } from '../signing.ts';
import type { EndpointConfig } from './endpoint-configs.ts';
import type { EndpointKeyCache } from './endpoint-keys.ts';
import type { WebhookRequest } from './sender.ts';

export interface PreparedRequest {
  request: WebhookRequest;
  /** What was signed, as sent: kept on the attempt row for the signature debugger. */
  signed: SignedParts;
}

/**
 * Signs the delivery's stored bytes with the endpoint's current (and still valid previous) secrets,
 * and says what it signed. Throws when a secret cannot be opened. `beforeStart`: see WebhookRequest.
 */
export function prepareRequest(
  delivery: ClaimedDelivery,
  config: EndpointConfig,
  keys: EndpointKeyCache,
  beforeStart: () => boolean,
): PreparedRequest {
  // Encoded once: both HMACs, the recorded hash and the request all use these same bytes.
  const body = Buffer.from(delivery.body);
  const signing = keys.signingKeysFor(config);
  const timestamp = Math.floor(Date.now() / 1000);
  const signature = signWithKeys(signing.keys, { webhookId: delivery.id, timestamp, body });
  return {
    request: {
      endpointId: delivery.endpointId,
      url: config.url,
      body,
      headers: { ...signature, 'x-devcard-event': delivery.eventType, 'x-devcard-delivery': delivery.id },
      beforeStart,
    },
    signed: {
      timestamp,
      bodyBytes: body.length,
      bodySha256: createHash('sha256').update(body).digest('hex'),
      fingerprints: signing.fingerprints,
    },
  };
}
