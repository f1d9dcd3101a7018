import { describe, expect, it } from 'vitest';
import { SendSlots } from '../../src/webhooks/delivery/send-slots.ts';
import { CLAIM_AHEAD } from '../../src/webhooks/delivery/worker-options.ts';

const row = (endpointId: string, n: number) => ({ endpointId, n });

describe('SendSlots', () => {
  it('starts at most perEndpoint per endpoint and keeps the rest waiting in claim order', () => {
    const slots = new SendSlots<ReturnType<typeof row>>({ total: 10, perEndpoint: 2 });
    for (let n = 1; n <= 4; n++) slots.add(row('a', n));
    expect(slots.takeStartable().map((r) => r.n)).toEqual([1, 2]);
    expect(slots.takeStartable()).toEqual([]);
    expect(slots).toMatchObject({ running: 2, held: 4 });
    expect(slots.heldByEndpoint.get('a')).toBe(4);

    slots.finish('a');
    expect(slots.takeStartable().map((r) => r.n)).toEqual([3]);
    expect(slots).toMatchObject({ running: 2, held: 3 });
  });

  it('shares the global limit between endpoints in turns', () => {
    const slots = new SendSlots<ReturnType<typeof row>>({ total: 3, perEndpoint: 5 });
    for (let n = 1; n <= 3; n++) slots.add(row('a', n));
    slots.add(row('b', 1));
    expect(slots.takeStartable().map((r) => `${r.endpointId}${r.n}`)).toEqual(['a1', 'b1', 'a2']);
    slots.finish('b');
    expect(slots.takeStartable().map((r) => `${r.endpointId}${r.n}`)).toEqual(['a3']);
  });

  it('drops what waits for a disabled endpoint, leaving what runs', () => {
    const slots = new SendSlots<ReturnType<typeof row>>({ total: 10, perEndpoint: 1 });
    for (let n = 1; n <= 3; n++) slots.add(row('a', n));
    slots.add(row('b', 1));
    slots.takeStartable();
    expect(slots.dropWaiting('a').map((r) => r.n)).toEqual([2, 3]);
    expect(slots).toMatchObject({ running: 2, held: 2 });
    expect(slots.heldByEndpoint.get('a')).toBe(1);
    slots.finish('a');
    expect(slots.takeStartable()).toEqual([]);
  });

  it('forgets an endpoint once nothing of it is held', () => {
    const slots = new SendSlots<ReturnType<typeof row>>({ total: 3, perEndpoint: 1 });
    slots.add(row('a', 1));
    slots.takeStartable();
    slots.finish('a');
    expect(slots).toMatchObject({ running: 0, held: 0 });
    expect(slots.heldByEndpoint.size).toBe(0);
  });

  it('counts what is held within each endpoint’s share as rows come and go', () => {
    const slots = new SendSlots<ReturnType<typeof row>>({ total: 100, perEndpoint: 1 });
    expect(slots.share).toBe(CLAIM_AHEAD);
    const within = () => [...slots.heldByEndpoint.values()].reduce((sum, held) => sum + Math.min(held, slots.share), 0);
    for (let n = 1; n <= slots.share + 3; n++) slots.add(row('a', n));
    slots.add(row('b', 1));
    expect(slots.heldWithinShare).toBe(slots.share + 1);

    slots.takeStartable();
    slots.finish('a');
    expect(slots.heldWithinShare).toBe(within());
    expect(slots.dropWaiting('a').length).toBe(slots.share + 2);
    expect(slots.heldWithinShare).toBe(within());
    slots.takeStartable();
    slots.finish('b');
    expect(slots.heldWithinShare).toBe(0);
  });
});
