/**
 * 3. Dispatch latency: steady views (open loop) of a card → time from the event (its envelope
 * `timestamp`, taken as the view is served) to the receiver getting the delivery, p50/p99, at two
 * offered loads for 20 s each:
 *  - half the throughput the throughput scenario measured in the same run on the same store,
 *    counted as it counts it, in deliveries: views of an owner with 5 endpoints, as there, at
 *    deliveries/s ÷ 5 ÷ 2 views/s, so the figure measures latency rather than saturation (the
 *    goal); skipped when the run has no throughput figure (`--only=throughput,latency` runs both);
 *  - a fixed 500 views/s of an owner with one endpoint (no goal: near capacity on a small
 *    machine it measures the queue).
 * The deliveries of the first load drain, and PostgreSQL is checkpointed, before the second.
 *
 * Matching a delivery to its view: views cycle through CARDS cards, so the delivery's `cardId`
 * names the card, and its envelope `timestamp` (the dispatch instant, taken while the view was
 * being served) falls inside exactly one view's [sent, responded] window of that card. Each of
 * an owner's endpoints gets its own delivery of the view, each measured.
 *
 * From the event, as a webhook's latency is counted: the timestamp has millisecond resolution,
 * truncated, so the figure overstates by less than a millisecond. Until 2026-12-01 this measured
 * from the view's response; but the worker starts a view's deliveries as its statement returns,
 * before the response is written, so most arrived before it and the p50 read 0.03–0.5 ms.
 */
import { createCard, createEndpoints, registerUser, type Owner } from '../lib/api.ts';
import { startMachineWindow } from '../lib/cost.ts';
import { paceViews, sendViews, type PacedView } from '../lib/load.ts';
import type { Receiver } from '../lib/receiver.ts';
import type { Measurement, Scenario } from '../lib/scenario.ts';
import { settle, withStore } from '../lib/scenario.ts';
import { percentile } from '../lib/stats.ts';

const FIXED_RATE = 500;
/** Endpoints per view in the throughput scenario, and the fraction of its throughput offered here. */
const THROUGHPUT_ENDPOINTS = 5;
const THROUGHPUT_FRACTION = 0.5;
const GOAL_P99_MS = 50;
const SECONDS = 20;
const CARDS = 100;
const WARMUP_VIEWS = 500;
/** The envelope timestamp has millisecond resolution. */
const CLOCK_SLACK_MS = 1;

export const dispatchLatencyScenario: Scenario = {
  name: '3. dispatch latency',
  async run(ctx) {
    return withStore(ctx, async (_store, start) => {
      const service = await start('server');
      const half = await cardsOfOwner(service.origin, 'half');
      const fixed = await cardsOfOwner(service.origin, 'fixed');
      const halfUrls = ctx.receiver.origins.slice(0, THROUGHPUT_ENDPOINTS).map((origin, i) => `${origin}/latency/half/${i}`);
      const fixedUrls = [`${ctx.receiver.origins[0]}/latency/fixed/0`];
      await ctx.receiver.setSecrets({
        ...(await createEndpoints(service.origin, half.owner, halfUrls)),
        ...(await createEndpoints(service.origin, fixed.owner, fixedUrls)),
      });
      // Warm-up (JIT, connection pools), not measured; its deliveries drain first, so the
      // measured run starts from an empty queue rather than behind a burst.
      await ctx.receiver.reset();
      await sendViews(service.origin, half.paths[0] as string, WARMUP_VIEWS, 16);
      await ctx.receiver.waitForUnique(WARMUP_VIEWS * THROUGHPUT_ENDPOINTS, 60_000);

      // Half the throughput in views/s, or why there is no such figure in this run.
      const throughput = ctx.shared.throughput[ctx.kind];
      const rate =
        throughput === undefined ? undefined : Math.max(1, Math.round((throughput / THROUGHPUT_ENDPOINTS) * THROUGHPUT_FRACTION));
      if (rate === undefined) ctx.log('no throughput figure in this run (add --only=throughput,latency): the ½-throughput load is skipped');
      const atHalf =
        rate === undefined ? undefined : await measure(ctx.receiver, service.origin, half.paths, THROUGHPUT_ENDPOINTS, rate, ctx.log);
      const none = 'no throughput';
      const measured: Measurement[] = [
        { figure: 'offered views/s (deliveries/s ÷ 5 ÷ 2)', unit: '/s', value: rate ?? none },
        { figure: 'views/s achieved at ½ throughput', unit: '/s', value: atHalf?.achieved ?? none },
        { figure: 'machine CPU busy at ½ throughput (all processes)', unit: '%', value: atHalf ? atHalf.busy * 100 : none },
        { figure: 'latency p50 at ½ throughput', unit: 'ms', value: atHalf?.p50 ?? none },
        { figure: 'latency p99 at ½ throughput', unit: 'ms', value: atHalf?.p99 ?? none, goal: { op: '<=', value: GOAL_P99_MS } },
      ];
      if (atHalf) await settle(ctx.databaseUrl);
      const atFixed = await measure(ctx.receiver, service.origin, fixed.paths, 1, FIXED_RATE, ctx.log);
      measured.push(
        { figure: `view response p50 at ${FIXED_RATE} views/s`, unit: 'ms', value: atFixed.viewP50 },
        { figure: `latency p50 at ${FIXED_RATE} views/s`, unit: 'ms', value: atFixed.p50 },
        { figure: `latency p99 at ${FIXED_RATE} views/s`, unit: 'ms', value: atFixed.p99 },
        { figure: `views/s achieved (offered ${FIXED_RATE})`, unit: '/s', value: atFixed.achieved },
        { figure: `machine CPU busy at ${FIXED_RATE} views/s (all processes)`, unit: '%', value: atFixed.busy * 100 },
      );
      return measured;
    });
  },
};

interface LatencyRun {
  achieved: number;
  /** Share of the machine's CPU time busy while the views were sent, all processes. */
  busy: number;
  viewP50: number;
  p50: number;
  p99: number;
}

/** A new owner with CARDS cards, and the public paths of those cards. */
async function cardsOfOwner(origin: string, prefix: string): Promise<{ owner: Owner; paths: string[] }> {
  const owner = await registerUser(origin, prefix);
  const paths: string[] = [];
  for (let i = 0; i < CARDS; i++) paths.push(`/api/u/${owner.username}/card/${await createCard(origin, owner, `Card ${i}`)}`);
  return { owner, paths };
}

/** `rate` views/s for SECONDS of an owner with `endpoints` endpoints, then every delivery matched to its view. */
async function measure(
  receiver: Receiver,
  origin: string,
  paths: readonly string[],
  endpoints: number,
  rate: number,
  log: (message: string) => void,
): Promise<LatencyRun> {
  await receiver.reset(true);
  const machine = startMachineWindow();
  const views = await paceViews(origin, paths, rate, SECONDS * 1000);
  const busy = machine();
  const sentFor = (views.at(-1)?.respondedAt ?? 0) - (views[0]?.sentAt ?? 0);
  await receiver.waitForUnique(views.length * endpoints, 60_000);
  const records = await receiver.records();

  const byCard = new Map<string, PacedView[]>();
  for (const view of views) {
    const cardId = view.path.slice(view.path.lastIndexOf('/') + 1);
    const list = byCard.get(cardId);
    if (list) list.push(view);
    else byCard.set(cardId, [view]);
  }
  const latencies: number[] = [];
  let unmatched = 0;
  for (const record of records) {
    const candidates = byCard.get(record.cardId ?? '') ?? [];
    const view = candidates.find(
      (v) => record.dispatchedAt >= Math.floor(v.sentAt) - CLOCK_SLACK_MS && record.dispatchedAt <= v.respondedAt + CLOCK_SLACK_MS,
    );
    if (view) latencies.push(record.receivedAt - record.dispatchedAt);
    else unmatched++;
  }
  const achieved = (views.length / sentFor) * 1000;
  log(
    `offered ${rate}/s: ${views.length} views in ${Math.round(sentFor)} ms (${Math.round(achieved)}/s); ${latencies.length} matched, ${unmatched} unmatched; ` +
      `p50 ${percentile(latencies, 50).toFixed(2)} ms, p99 ${percentile(latencies, 99).toFixed(2)} ms; machine CPU ${Math.round(busy * 100)} % busy`,
  );
  return {
    achieved,
    busy,
    viewP50: percentile(
      views.map((v) => v.respondedAt - v.sentAt),
      50,
    ),
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
  };
}
