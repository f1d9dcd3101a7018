import { createServer, type ServerResponse } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_MAX_IN_FLIGHT_PER_ENDPOINT } from '../../src/webhooks/delivery/worker-options.ts';
import { buildTestApp, type TestApp } from '../helpers/app.ts';
import { listenLocally } from '../helpers/listen.ts';
import { signUp, uniqueUsername, type Session } from '../helpers/users.ts';
import { waitFor } from '../helpers/wait.ts';
import { createEndpoint } from '../helpers/webhook-api.ts';

const TIMEOUT_MS = 4_000;
const ENV = { WEBHOOK_TIMEOUT_MS: String(TIMEOUT_MS), WEBHOOK_SWEEP_INTERVAL_MS: '200' };
const FAST_DELIVERIES = 5;

/** One receiver origin for several users: paths under /slow never answer, /fast answers at once. */
async function sharedReceiver() {
  const state = { slowOpen: 0, slowMaxOpen: 0, fastServed: 0 };
  const held: ServerResponse[] = [];
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      if (req.url?.startsWith('/slow')) {
        state.slowOpen++;
        state.slowMaxOpen = Math.max(state.slowMaxOpen, state.slowOpen);
        req.socket.on('close', () => state.slowOpen--);
        held.push(res);
      } else {
        state.fastServed++;
        res.end('ok');
      }
    });
  });
  const listening = await listenLocally(server);
  return { ...listening, state };
}

describe('delivery engine: endpoints of different users on one receiver origin', { timeout: 60_000 }, () => {
  let t: TestApp;
  let receiver: Awaited<ReturnType<typeof sharedReceiver>>;

  beforeAll(async () => {
    t = await buildTestApp({ env: ENV });
    receiver = await sharedReceiver();
  });
  afterAll(async () => {
    await t?.close();
    await receiver?.close();
  });

  const fire = (owner: Session) =>
    t.app.webhooks.dispatch(owner.id, 'card.viewed', { userId: owner.id, cardId: null, viewer: null, source: 'link' });

  it("one user's slow path does not make another user's requests to the same host wait", async () => {
    // Two endpoints on the slow path: together they hold more requests than one endpoint may.
    const slowOwner = await signUp(t.app, uniqueUsername('slowpath'));
    const slowIds = [
      (await createEndpoint(t.app, slowOwner, `${receiver.origin}/slow-1`, ['card.viewed'])).id,
      (await createEndpoint(t.app, slowOwner, `${receiver.origin}/slow-2`, ['card.viewed'])).id,
    ];
    const fastOwner = await signUp(t.app, uniqueUsername('fastpath'));
    const fast = await createEndpoint(t.app, fastOwner, `${receiver.origin}/fast`, ['card.viewed']);

    for (let i = 0; i < DEFAULT_MAX_IN_FLIGHT_PER_ENDPOINT + 2; i++) await fire(slowOwner);
    const slowHolds = 2 * DEFAULT_MAX_IN_FLIGHT_PER_ENDPOINT;
    // More than one endpoint's share is open: both slow endpoints are holding requests.
    await waitFor(() => receiver.state.slowOpen > DEFAULT_MAX_IN_FLIGHT_PER_ENDPOINT, { what: 'both slow endpoints to hold requests' });

    for (let i = 0; i < FAST_DELIVERIES; i++) await fire(fastOwner);
    await waitFor(
      async () => (await t.db.prisma.webhookDelivery.count({ where: { endpointId: fast.id, status: 'success' } })) === FAST_DELIVERIES,
      { what: 'the fast endpoint to be served' },
    );
    // Served while every slow request still hangs: none of them has timed out yet.
    const slowAttempts = await t.db.prisma.webhookDeliveryAttempt.count({ where: { delivery: { endpointId: { in: slowIds } } } });
    expect(slowAttempts).toBe(0);
    expect(receiver.state.fastServed).toBe(FAST_DELIVERIES);
    expect(receiver.state.slowMaxOpen).toBe(slowHolds);
  });
});
