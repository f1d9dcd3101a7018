/**
 * 5. Memory stability: 100,000 deliveries through one worker → live heap after vs before
 * (after a warm-up, each after a full GC). PostgreSQL: a `pnpm worker` process fed by rows
 * written straight into the queue. Embedded: the store belongs to the API process, so its
 * in-process worker is fed by card views, scaled down to 5,000 deliveries.
 */
import type pg from 'pg';
import { createEndpoints, registerUser } from '../lib/api.ts';
import { sleep } from '../lib/clock.ts';
import { sendViews } from '../lib/load.ts';
import type { Measurement, Scenario, ScenarioContext } from '../lib/scenario.ts';
import { withStore } from '../lib/scenario.ts';
import type { Service } from '../lib/service.ts';
import { countPending, endpointIdsOf, insertDeliveries } from '../lib/seed.ts';

const ENDPOINTS = 5;
const MB = 1024 * 1024;

export const memoryScenario: Scenario = {
  name: '5. memory stability',
  async run(ctx) {
    return withStore(ctx, async (store, start) => {
      const pool = store.pool;
      const api = await start('server', pool ? { WEBHOOK_WORKER: 'off' } : {});
      const owner = await registerUser(api.origin, 'mem');
      const urls = ctx.receiver.origins.slice(0, ENDPOINTS).map((origin, i) => `${origin}/memory/${i}`);
      await ctx.receiver.setSecrets(await createEndpoints(api.origin, owner, urls));
      if (pool) {
        const endpointIds = await endpointIdsOf(pool, owner.id);
        const worker = await start('worker');
        const feed = (count: number) => insertDeliveries(pool, { endpointIds, ownerId: owner.id, count, dueInMs: 0 });
        return measure(ctx, worker, 100_000, 10_000, feed, () => settled(pool));
      }
      const path = `/api/u/${owner.username}`;
      const feed = (count: number) => sendViews(api.origin, path, count / ENDPOINTS, 16);
      return measure(ctx, api, 5_000, 1_000, feed, () => sleep(1_000));
    });
  },
};

async function measure(
  ctx: ScenarioContext,
  service: Service,
  deliveries: number,
  warmup: number,
  feed: (count: number) => Promise<void>,
  settle: () => Promise<void>,
): Promise<Measurement[]> {
  await ctx.receiver.reset();
  await feed(warmup);
  await ctx.receiver.waitForUnique(warmup, 120_000);
  await settle();
  const before = await service.memory();
  await feed(deliveries);
  await ctx.receiver.waitForUnique(warmup + deliveries, 300_000);
  await settle();
  const after = await service.memory();
  ctx.log(
    `heap ${Math.round(before.heapUsed / MB)} → ${Math.round(after.heapUsed / MB)} MB, rss ${Math.round(before.rss / MB)} → ${Math.round(after.rss / MB)} MB`,
  );
  return [
    { figure: 'deliveries measured', unit: '', value: deliveries },
    { figure: 'heap before', unit: 'MB', value: before.heapUsed / MB },
    { figure: 'heap after', unit: 'MB', value: after.heapUsed / MB },
    { figure: 'heap growth', unit: '%', value: (after.heapUsed / before.heapUsed - 1) * 100, goal: { op: '<=', value: 10 } },
  ];
}

/** Waits until every result is written (nothing pending). */
async function settled(pool: pg.Pool): Promise<void> {
  while ((await countPending(pool)) > 0) await sleep(100);
}
