/**
 * 1. Delivery throughput: 4,000 card views × 5 endpoints = 20,000 deliveries (embedded: 5,000), from the first view
 * to the last delivery the receiver accepted; then the raw ceiling: the same number of signed
 * POSTs from a bare undici loop at the engine's concurrency (5 endpoints × per-endpoint limit).
 */
import { randomUUID } from 'node:crypto';
import { Pool } from 'undici';
import { decodeSecret, signWithKeys } from '../../src/webhooks/signing.ts';
import { DEFAULT_MAX_IN_FLIGHT_PER_ENDPOINT } from '../../src/webhooks/delivery/worker-options.ts';
import { createEndpoints, registerUser } from '../lib/api.ts';
import { nowMs } from '../lib/clock.ts';
import { sendViews } from '../lib/load.ts';
import type { Scenario } from '../lib/scenario.ts';
import { withStore } from '../lib/scenario.ts';
import { countPending } from '../lib/seed.ts';

const ENDPOINTS = 5;
/** 4,000 views on PostgreSQL; the embedded store (WASM, one connection) runs a quarter to stay within the time budget. */
const VIEWS = { postgres: 4_000, embedded: 1_000 } as const;
const VIEW_CLIENTS = 32;
const WARMUP_VIEWS = 200;

export const throughputScenario: Scenario = {
  name: '1. delivery throughput',
  async run(ctx) {
    const { receiver } = ctx;
    const views = VIEWS[ctx.kind];
    const deliveries = views * ENDPOINTS;
    const perEndpoint = DEFAULT_MAX_IN_FLIGHT_PER_ENDPOINT;
    const urls = receiver.origins.slice(0, ENDPOINTS).map((origin, i) => `${origin}/throughput/${i}`);

    const engine = await withStore(ctx, async (store, start) => {
      const service = await start('server');
      const owner = await registerUser(service.origin, 'tp');
      const secrets = await createEndpoints(service.origin, owner, urls);
      await receiver.setSecrets(secrets);
      const path = `/api/u/${owner.username}`;
      // Warm-up (JIT, connection pools), not measured.
      await receiver.reset();
      await sendViews(service.origin, path, WARMUP_VIEWS, VIEW_CLIENTS);
      await receiver.waitForUnique(WARMUP_VIEWS * ENDPOINTS, 60_000);

      await receiver.reset();
      const startedAt = nowMs();
      await sendViews(service.origin, path, views, VIEW_CLIENTS);
      const viewsDoneAt = nowMs();
      const stats = await receiver.waitForUnique(deliveries, 180_000);
      if (stats.badSignatures > 0) throw new Error(`${stats.badSignatures} deliveries failed signature verification`);
      if (store.pool) {
        // Outcomes are committed after the receiver answers; all of them must be, shortly.
        const deadline = Date.now() + 10_000;
        while ((await countPending(store.pool)) > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      }
      ctx.log(
        `views took ${Math.round(viewsDoneAt - startedAt)} ms, deliveries ${Math.round(stats.lastAt - startedAt)} ms, duplicates ${stats.duplicates}`,
      );
      return { perSecond: (deliveries / (stats.lastAt - startedAt)) * 1000, viewsPerSecond: (views / (viewsDoneAt - startedAt)) * 1000 };
    });

    const ceiling = await rawCeiling(urls, perEndpoint, deliveries, ctx);
    return [
      { figure: 'deliveries measured (views × 5)', unit: '', value: deliveries },
      { figure: 'deliveries/s', unit: '/s', value: engine.perSecond, goal: { op: '>=', value: 5_000 } },
      { figure: 'views/s while dispatching', unit: '/s', value: engine.viewsPerSecond },
      { figure: 'raw undici ceiling', unit: '/s', value: ceiling },
      { figure: 'ratio to ceiling', unit: '', value: engine.perSecond / ceiling, goal: { op: '>=', value: 0.4 } },
    ];
  },
};

/** The same number of signed POSTs to the same receiver ports, by a bare loop with `perEndpoint` in flight per endpoint. */
async function rawCeiling(
  urls: readonly string[],
  perEndpoint: number,
  total: number,
  ctx: Parameters<Scenario['run']>[0],
): Promise<number> {
  const secrets: Record<string, string> = {};
  const targets = urls.map((url) => {
    const secret = `whsec_${Buffer.from(randomUUID()).toString('base64')}`;
    const { origin, pathname } = new URL(url);
    secrets[pathname] = secret;
    return { pool: new Pool(origin, { connections: perEndpoint }), path: pathname, keys: [decodeSecret(secret)] };
  });
  await ctx.receiver.setSecrets(secrets);
  await ctx.receiver.reset();
  const userId = randomUUID();
  let sent = 0;
  const client = async (target: (typeof targets)[number]) => {
    while (sent < total) {
      sent++;
      const id = randomUUID();
      const body = JSON.stringify({
        id: randomUUID(),
        type: 'card.viewed',
        timestamp: new Date().toISOString(),
        data: { userId, cardId: null, viewer: null, source: 'link' },
      });
      const signature = signWithKeys(target.keys, { webhookId: id, timestamp: Math.floor(Date.now() / 1000), body });
      const res = await target.pool.request({
        method: 'POST',
        path: target.path,
        headers: { ...signature, 'content-type': 'application/json', 'x-devcard-event': 'card.viewed', 'x-devcard-delivery': id },
        body,
      });
      await res.body.text();
      if (res.statusCode !== 200) throw new Error(`receiver answered ${res.statusCode}`);
    }
  };
  const startedAt = nowMs();
  await Promise.all(targets.flatMap((target) => Array.from({ length: perEndpoint }, () => client(target))));
  const elapsed = nowMs() - startedAt;
  await Promise.all(targets.map((target) => target.pool.close()));
  return (total / elapsed) * 1000;
}
