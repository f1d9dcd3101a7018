import { api } from './api.js';
import { busy, el } from './dom.js';
import { announce, reportError } from './messages.js';
import { endpointHref } from './routes.js';

/** The one event the API sends on demand (POST /api/webhooks/:id/test), from wherever the portal offers it. */

export const TEST_EVENT_TYPE = 'webhook.test';

/** A fixed id, like the catalogue's examples: a real test event gets a new one. */
const EXAMPLE_EVENT_ID = 'c4ca4238-a0b9-4382-8dcc-509a6f75849b';
const EXAMPLE_ENDPOINT_ID = '00000000-0000-4000-8000-000000000000';

/** The test event's body as the API documents it (`data: {endpointId}`), dated like the catalogue's examples. */
export function testEventExample(eventTypes, endpointId) {
  return {
    id: EXAMPLE_EVENT_ID,
    type: TEST_EVENT_TYPE,
    timestamp: eventTypes[0]?.example?.timestamp ?? new Date().toISOString(),
    data: { endpointId: endpointId ?? EXAMPLE_ENDPOINT_ID },
  };
}

/** Queues a test event for `endpointId`; says so next to `button`, with the way to its delivery. */
export function sendTestEvent(endpointId, button) {
  return busy(button, async () => {
    try {
      const { deliveryId } = await api.sendTest(endpointId);
      announce(
        [
          `Test event queued as delivery ${deliveryId}. `,
          el('a', { href: endpointHref(endpointId, 'deliveries') }, 'See it in the delivery log'),
        ],
        button,
      );
      return deliveryId;
    } catch (error) {
      reportError(error, button);
      return null;
    }
  });
}
