/**
 * 1. Delivery throughput: 4,000 card views × 5 endpoints = 20,000 deliveries (embedded: 5,000), from the first view
 * to the last delivery the receiver accepted; then the raw ceiling: the same number of signed
 * POSTs from a bare undici loop at the engine's concurrency (5 endpoints × per-endpoint limit).
 *
 * Over the same window (first view to the last outcome committed): the CPU the service's process
 * tree and every process of the PostgreSQL server used, and the WAL the server wrote
 * (`pg_stat_wal`), per delivery (see lib/cost.ts). The deliveries/s figure is handed to the
 * dispatch-latency scenario, which offers half of it. Then the same views of an owner with no
 * endpoint, on a fresh store: the host's own CPU per view, a fifth of which every delivery of the
 * plain run carries before any webhook work.
 *
 * The same run again with issue 14's per-endpoint settings, each on a fresh store, next to the
 * plain one: views of one card (its own view statement), then with every endpoint listing that
 * card (`cardIds`, the fan-out's filter), then also paced at 1,000 a second (`maxPerSecond`, which
 * does not bind at these rates but sends every delivery through a claim). Issue 13's cost goals
 * apply to the unpaced runs; the paced one shows what pacing costs.
 */
import { randomUUID } from 'node:crypto';
import { Pool } from 'undici';
import { decodeSecret, signWithKeys } from '../../src/webhooks/signing.ts';
import { DEFAULT_MAX_IN_FLIGHT_PER_ENDPOINT } from '../../src/webhooks/delivery/worker-options.ts';
import pg from 'pg';
import { splitSchema } from '../../src/db/database.ts';
import { createCard, createEndpoints, registerUser } from '../lib/api.ts';
import { nowMs, sleep } from '../lib/clock.ts';
import { markWal, walBreakdown, type WalMark } from '../lib/wal-breakdown.ts';
import { findPostmaster, readWal, startCpuWindow, STATS_FLUSH_MS, type CostWindow, type Wal } from '../lib/cost.ts';
import { sendViews } from '../lib/load.ts';
import type { Goal, Measurement, Scenario, ScenarioContext } from '../lib/scenario.ts';
import { settle, withStore } from '../lib/scenario.ts';
import type { BenchStore } from '../lib/stores.ts';
import { countPending } from '../lib/seed.ts';

const ENDPOINTS = 5;
/** 4,000 views on PostgreSQL; the embedded store (WASM, one connection) runs a quarter to stay within the time budget. */
const VIEWS = { postgres: 4_000, embedded: 1_000 } as const;
const VIEW_CLIENTS = 32;
/**
 * Views (and their deliveries) before each window, as many as the window's: V8 is still
 * optimising the service's code long after a few hundred views (bench/README.md, "Warm-up").
 */
const WARMUP_VIEWS = VIEWS;

/** Issue 13's goals: the ratio to the raw ceiling (stretch 0.5), CPU and WAL per delivery. */
const GOAL_RATIO = 0.35;
const STRETCH_RATIO = 0.5;
const GOAL_CPU_MICROS = 250;
const GOAL_WAL_RECORDS = 10;
const GOAL_WAL_BYTES = 1024;

/** One measured run: the endpoints' settings, and which page the views are of. */
interface Variant {
  /** How the variant's rows are named; empty for the plain run. */
  label: string;
  /** Views of one card rather than of the profile. */
  cardViews: boolean;
  /** The endpoints list the viewed card. */
  cardIds: boolean;
  maxPerSecond: number | null;
  /** Issue 13's cost goals apply (not to paced endpoints, whose deliveries are claimed: docs/delivery-semantics.md). */
  goals: boolean;
}

const PLAIN: Variant = { label: '', cardViews: false, cardIds: false, maxPerSecond: null, goals: true };
const VARIANTS: Variant[] = [
  { label: 'card views', cardViews: true, cardIds: false, maxPerSecond: null, goals: true },
  { label: 'card views, cardIds', cardViews: true, cardIds: true, maxPerSecond: null, goals: true },
  { label: 'card views, cardIds + maxPerSecond 1,000', cardViews: true, cardIds: true, maxPerSecond: 1_000, goals: false },
];

interface EngineRun {
  perSecond: number;
  viewsPerSecond: number;
  cost: CostWindow;
  walPerDelivery: Wal | undefined;
}

export const throughputScenario: Scenario = {
  name: '1. delivery throughput',
  async run(ctx) {
    const views = VIEWS[ctx.kind];
    const deliveries = views * ENDPOINTS;
    const perEndpoint = DEFAULT_MAX_IN_FLIGHT_PER_ENDPOINT;
    const urls = ctx.receiver.origins.slice(0, ENDPOINTS).map((origin, i) => `${origin}/throughput/${i}`);

    const engine = await measureEngine(ctx, PLAIN, urls, views);
    ctx.shared.throughput[ctx.kind] = engine.perSecond;
    const { perSecond: ceiling, clientMicrosPerPost } = await rawCeiling(urls, perEndpoint, deliveries, ctx);
    const alone = await measureViewsAlone(ctx, views);
    const variants: Measurement[] = [];
    for (const variant of VARIANTS) {
      const run = await measureEngine(ctx, variant, urls, views);
      variants.push(
        { figure: `deliveries/s (${variant.label})`, unit: '/s', value: run.perSecond },
        { figure: `deliveries/s vs plain (${variant.label})`, unit: '', value: run.perSecond / engine.perSecond },
        ...costRows(ctx.kind === 'postgres', run.cost, run.walPerDelivery, deliveries, variant),
      );
    }
    return [
      { figure: 'deliveries measured (views × 5)', unit: '', value: deliveries },
      { figure: 'deliveries/s', unit: '/s', value: engine.perSecond },
      { figure: 'views/s while dispatching', unit: '/s', value: engine.viewsPerSecond },
      { figure: 'raw undici ceiling', unit: '/s', value: ceiling },
      { figure: 'raw ceiling: CPU of its client per signed POST', unit: 'µs', value: clientMicrosPerPost },
      { figure: 'ratio to ceiling', unit: '', value: engine.perSecond / ceiling, goal: { op: '>=', value: GOAL_RATIO } },
      { figure: `deliveries/s for ${GOAL_RATIO}× ceiling (goal)`, unit: '/s', value: GOAL_RATIO * ceiling },
      { figure: `deliveries/s for ${STRETCH_RATIO}× ceiling (stretch)`, unit: '/s', value: STRETCH_RATIO * ceiling },
      ...costRows(ctx.kind === 'postgres', engine.cost, engine.walPerDelivery, deliveries, PLAIN),
      ...viewsAloneRows(ctx.kind === 'postgres', alone, views),
      ...engineShareRows(ctx.kind === 'postgres', engine.cost, alone, views, clientMicrosPerPost),
      ...variants,
    ];
  },
};

/** `views` views on a fresh store and service, delivered to `urls` set up as `variant` says. */
async function measureEngine(ctx: ScenarioContext, variant: Variant, urls: readonly string[], views: number): Promise<EngineRun> {
  const { receiver } = ctx;
  const deliveries = views * ENDPOINTS;
  const name = variant.label ? ` (${variant.label})` : '';
  return withStore(ctx, async (store, start) => {
    const service = await start('server');
    const owner = await registerUser(service.origin, 'tp');
    const card = variant.cardViews ? await createCard(service.origin, owner, 'Throughput') : undefined;
    const secrets = await createEndpoints(service.origin, owner, urls, {
      ...(variant.cardIds && card && { cardIds: [card] }),
      ...(variant.maxPerSecond !== null && { maxPerSecond: variant.maxPerSecond }),
    });
    await receiver.setSecrets(secrets);
    const path = card ? `/api/u/card/${card}` : `/api/u/${owner.username}`;
    // Warm-up (JIT, connection pools), not measured.
    await receiver.reset();
    await sendViews(service.origin, path, WARMUP_VIEWS[ctx.kind], VIEW_CLIENTS);
    await receiver.waitForUnique(WARMUP_VIEWS[ctx.kind] * ENDPOINTS, 120_000);

    const admin = await connectAdmin(store);
    try {
      let postmaster: number | undefined;
      let walBefore: Wal | undefined;
      let walMark: WalMark | undefined;
      if (admin) {
        postmaster = await findPostmaster(admin);
        // Every backend's counters so far reach pg_stat_wal; then the window starts on clean buffers.
        await sleep(STATS_FLUSH_MS);
        await settle(ctx.databaseUrl);
        walBefore = await readWal(admin);
        if (ctx.walBreakdown) walMark = await markWal(admin);
      }

      await receiver.reset();
      const cpu = startCpuWindow(service.pid, postmaster);
      const startedAt = nowMs();
      await sendViews(service.origin, path, views, VIEW_CLIENTS);
      const viewsDoneAt = nowMs();
      const stats = await receiver.waitForUnique(deliveries, 180_000);
      if (stats.badSignatures > 0) throw new Error(`${stats.badSignatures} deliveries failed signature verification`);
      if (admin) {
        // Outcomes are committed after the receiver answers; all of them must be, shortly.
        const deadline = Date.now() + 10_000;
        while ((await countPending(admin)) > 0 && Date.now() < deadline) await sleep(50);
      }
      const cost = cpu();

      let walPerDelivery: Wal | undefined;
      if (admin && walBefore) {
        // The service's backends report their WAL counters when they exit; ours when told to.
        await service.stop();
        await sleep(1_000);
        await admin.query('SELECT pg_stat_force_next_flush()').catch(() => {});
        const walAfter = await readWal(admin);
        walPerDelivery = {
          records: (walAfter.records - walBefore.records) / deliveries,
          bytes: (walAfter.bytes - walBefore.bytes) / deliveries,
        };
        if (walMark) {
          const breakdown = await walBreakdown(admin, walMark, deliveries);
          for (const line of breakdown ?? ['WAL breakdown: pg_waldump cannot read the WAL here']) ctx.log(`  ${line}`);
        }
      }
      ctx.log(
        `views${name} took ${Math.round(viewsDoneAt - startedAt)} ms, deliveries ${Math.round(stats.lastAt - startedAt)} ms, duplicates ${stats.duplicates}`,
      );
      const serviceLine = `CPU per delivery${name}: service ${Math.round(cost.serviceMicros / deliveries)} µs`;
      ctx.log(
        admin
          ? `${serviceLine}, PostgreSQL ${Math.round(cost.postgresMicros / deliveries)} µs` +
              (walPerDelivery
                ? `; WAL per delivery ${walPerDelivery.records.toFixed(2)} records, ${Math.round(walPerDelivery.bytes)} B`
                : '') +
              ' (PostgreSQL CPU and WAL are server-wide: other work on the server during the window counts too)'
          : `${serviceLine} (the embedded store included)`,
      );
      return {
        perSecond: (deliveries / (stats.lastAt - startedAt)) * 1000,
        viewsPerSecond: (views / (viewsDoneAt - startedAt)) * 1000,
        cost,
        walPerDelivery,
      };
    } finally {
      await admin?.end().catch(() => {});
    }
  });
}

/** PostgreSQL: one connection of our own on the scenario's schema, for everything in a window (none on the embedded store). */
async function connectAdmin(store: BenchStore): Promise<pg.Client | undefined> {
  if (!store.pool) return undefined;
  const { connectionString, schema } = splitSchema(store.env.DATABASE_URL as string);
  const admin = new pg.Client({ connectionString, options: `-c search_path="${schema}"` });
  await admin.connect();
  return admin;
}

/**
 * The plain run's views again, of a profile whose owner has no endpoint: what the host's page
 * costs before any webhook work (the page, its view row, the statement's empty fan-out, the
 * commit). A fifth of it is in each delivery's CPU of the plain run, a floor under the goal.
 */
async function measureViewsAlone(ctx: ScenarioContext, views: number): Promise<CostWindow> {
  return withStore(ctx, async (store, start) => {
    const service = await start('server');
    const owner = await registerUser(service.origin, 'tp');
    const path = `/api/u/${owner.username}`;
    await sendViews(service.origin, path, WARMUP_VIEWS[ctx.kind], VIEW_CLIENTS);
    const admin = await connectAdmin(store);
    try {
      const postmaster = admin && (await findPostmaster(admin));
      await settle(ctx.databaseUrl);
      const cpu = startCpuWindow(service.pid, postmaster);
      await sendViews(service.origin, path, views, VIEW_CLIENTS);
      return cpu();
    } finally {
      await admin?.end().catch(() => {});
    }
  });
}

/** The host's own share: CPU per view with no endpoints, and that share of each delivery. */
function viewsAloneRows(postgres: boolean, cost: CostWindow, views: number): Measurement[] {
  const service = cost.serviceMicros / views;
  const server = postgres ? cost.postgresMicros / views : 0;
  return [
    { figure: 'CPU per view, no endpoints: service', unit: 'µs', value: service },
    { figure: 'CPU per view, no endpoints: PostgreSQL', unit: 'µs', value: postgres ? server : 'in service' },
    { figure: `of it in each delivery (÷ ${ENDPOINTS}): the host's page`, unit: 'µs', value: pagePerDelivery(postgres, cost, views) },
  ];
}

/** The views-alone run's CPU per view (service, and PostgreSQL when it is the store), ÷ ENDPOINTS: what each delivery carries for the page. */
function pagePerDelivery(postgres: boolean, alone: CostWindow, views: number): number {
  return (alone.serviceMicros + (postgres ? alone.postgresMicros : 0)) / views / ENDPOINTS;
}

/**
 * What the webhook engine itself adds to a delivery of the plain run: its CPU, less the host's
 * page (the views alone, ÷ 5) and less what a bare signed POST costs its client (the raw
 * ceiling's loop). The rest is the queue (statements, commits) and the worker's bookkeeping.
 */
function engineShareRows(postgres: boolean, engine: CostWindow, alone: CostWindow, views: number, bareSend: number): Measurement[] {
  if (!postgres) return [];
  const deliveries = views * ENDPOINTS;
  const total = (engine.serviceMicros + engine.postgresMicros) / deliveries;
  const page = pagePerDelivery(postgres, alone, views);
  if (!Number.isFinite(total) || !Number.isFinite(page)) return [];
  return [
    { figure: 'of each delivery: the engine (all of it − the page − a bare signed POST)', unit: 'µs', value: total - page - bareSend },
  ];
}

/** CPU and WAL per delivery. The embedded store runs inside the service, so its CPU is all in the service's. */
function costRows(postgres: boolean, cost: CostWindow, wal: Wal | undefined, deliveries: number, variant: Variant): Measurement[] {
  const service = cost.serviceMicros / deliveries;
  const server = cost.postgresMicros / deliveries;
  const serverValue = postgres ? (Number.isNaN(server) ? 'not local' : server) : 'in service';
  const name = variant.label ? ` (${variant.label})` : '';
  const goal = (value: Goal) => (variant.goals ? { goal: value } : {});
  return [
    { figure: `CPU per delivery: service${name}`, unit: 'µs', value: service },
    { figure: `CPU per delivery: PostgreSQL (all processes)${name}`, unit: 'µs', value: serverValue },
    {
      figure: `CPU per delivery: service + PostgreSQL${name}`,
      unit: 'µs',
      value: typeof serverValue === 'number' ? service + serverValue : postgres ? 'not local' : service,
      ...goal({ op: '<=', value: GOAL_CPU_MICROS }),
    },
    { figure: `WAL records per delivery${name}`, unit: '', value: wal?.records ?? 'n/a', ...goal({ op: '<=', value: GOAL_WAL_RECORDS }) },
    { figure: `WAL bytes per delivery${name}`, unit: 'B', value: wal?.bytes ?? 'n/a', ...goal({ op: '<=', value: GOAL_WAL_BYTES }) },
  ];
}

/** The same number of signed POSTs to the same receiver ports, by a bare loop with `perEndpoint` in flight per endpoint. */
async function rawCeiling(
  urls: readonly string[],
  perEndpoint: number,
  total: number,
  ctx: Parameters<Scenario['run']>[0],
): Promise<{ perSecond: number; clientMicrosPerPost: number }> {
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
  // This process runs nothing else meanwhile (the receiver is its own process): its CPU is the
  // client's, the floor under a delivery's send (signing, undici, the socket writes).
  const cpuBefore = process.cpuUsage();
  await Promise.all(targets.flatMap((target) => Array.from({ length: perEndpoint }, () => client(target))));
  const cpu = process.cpuUsage(cpuBefore);
  const elapsed = nowMs() - startedAt;
  await Promise.all(targets.map((target) => target.pool.close()));
  return { perSecond: (total / elapsed) * 1000, clientMicrosPerPost: (cpu.user + cpu.system) / total };
}
