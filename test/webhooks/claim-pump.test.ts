import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newEventId } from '../../src/ids.ts';
import { ClaimPump } from '../../src/webhooks/delivery/claim-pump.ts';
import { EndpointPace, PACE_WINDOW_MS } from '../../src/webhooks/delivery/endpoint-pace.ts';
import { SendSlots } from '../../src/webhooks/delivery/send-slots.ts';
import { CLAIM_AHEAD, HOLD_AHEAD_MS } from '../../src/webhooks/delivery/worker-options.ts';
import type { WorkerLogger } from '../../src/webhooks/delivery/worker-logger.ts';
import type { ClaimedDelivery } from '../../src/webhooks/queue/types.ts';
import { generateEndpointSecret, SecretBox } from '../../src/webhooks/secrets.ts';
import { openQueueStore, type QueueStore } from '../helpers/queue-store.ts';
import { waitFor } from '../helpers/wait.ts';

const quiet: WorkerLogger = { error: () => {}, warn: () => {}, info: () => {}, debug: () => {} };
const MAX_IN_FLIGHT = 16;
const PER_ENDPOINT = 2;
const SHARE = CLAIM_AHEAD * PER_ENDPOINT;
const WINDOW = CLAIM_AHEAD * MAX_IN_FLIGHT;

/** A held row of `endpointId` as the slots keep it: only its endpoint matters to the pump. */
const heldRow = (endpointId: string, n: number) => ({ endpointId, id: `${endpointId}-${n}` }) as unknown as ClaimedDelivery;

/** The claim pump's arithmetic against a real queue: what a dispatch may claim, what a backlog claim may take. */
describe('claim pump: holding ahead of an endpoint’s pace', () => {
  let qs: QueueStore;
  const box = new SecretBox(Buffer.alloc(32, 4));
  beforeAll(async () => {
    qs = await openQueueStore('pump');
  });
  afterAll(async () => {
    await qs?.close();
  });

  function pumpWith(slots: SendSlots<ClaimedDelivery>, pace: EndpointPace, claimed: ClaimedDelivery[]): ClaimPump {
    const pump = new ClaimPump({
      queue: qs.queue,
      logger: quiet,
      leaseMs: 120_000,
      timeoutMs: 10_000,
      holdAheadMs: HOLD_AHEAD_MS,
      maxInFlight: MAX_IN_FLIGHT,
      slots,
      pace,
      resultsFull: () => false,
      waitingForWrite: () => false,
      claimed: (deliveries) => void claimed.push(...deliveries),
      scheduleWake: () => {},
    });
    pump.start();
    return pump;
  }

  it('lets a dispatch claim past the share what an endpoint’s recent pace starts within the hold-ahead time', () => {
    let now = 0;
    const pace = new EndpointPace(() => now);
    const slots = new SendSlots<ClaimedDelivery>({ total: MAX_IN_FLIGHT, perEndpoint: PER_ENDPOINT });
    const pump = pumpWith(slots, pace, []);
    for (let n = 0; n < SHARE; n++) slots.add(heldRow('fast', n));
    for (let n = 0; n < SHARE; n++) slots.add(heldRow('new', n));

    // No pace known yet: both endpoints hold their share, so neither takes more at dispatch.
    expect(pump.reserveClaim()?.saturated.sort()).toEqual(['fast', 'new']);

    // 'fast' finished 10 attempts in a whole second: it may hold 10/s × HOLD_AHEAD_MS.
    for (let n = 0; n < 10; n++) pump.attemptFinished('fast');
    now += PACE_WINDOW_MS;
    const mayHold = (10 * HOLD_AHEAD_MS) / 1000;
    expect(mayHold).toBeGreaterThan(SHARE);
    expect(pump.reserveClaim()?.saturated).toEqual(['new']);
    for (let n = SHARE; n < mayHold; n++) slots.add(heldRow('fast', n));
    expect(pump.reserveClaim()?.saturated.sort()).toEqual(['fast', 'new']);
  });

  it('still claims other endpoints’ due rows while one holds far past its share', async () => {
    const endpointIds = await Promise.all(
      ['held', 'due'].map(async (name) => {
        const endpoint = await qs.db.prisma.webhookEndpoint.create({
          data: {
            userId: qs.userId,
            url: `https://${name}.example.com/hook`,
            secretEncrypted: box.seal(generateEndpointSecret()),
            events: ['card.viewed'],
          },
        });
        return endpoint.id;
      }),
    );
    const [heldId, dueId] = endpointIds as [string, string];
    const due = await qs.queue.insertForEndpoint({
      endpointId: dueId,
      eventId: newEventId(),
      eventType: 'webhook.test',
      body: '{}',
      notify: false,
    });

    // More rows of one endpoint than the whole claim window, held for its pace.
    const slots = new SendSlots<ClaimedDelivery>({ total: MAX_IN_FLIGHT, perEndpoint: PER_ENDPOINT });
    for (let n = 0; n < WINDOW + 10; n++) slots.add(heldRow(heldId, n));
    const claimed: ClaimedDelivery[] = [];
    const pump = pumpWith(slots, new EndpointPace(), claimed);
    pump.sweep();
    await waitFor(() => claimed.some((d) => d.id === due?.id), { what: 'the other endpoint’s due row to be claimed' });
    await pump.stop();
    expect(claimed.map((d) => d.endpointId)).toEqual([dueId]);
  });
});
