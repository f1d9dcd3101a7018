/**
 * 3. Dispatch latency: a steady 500 views/s for 20 s (open loop) of an owner with one endpoint →
 * time from the view's response to the receiver getting the delivery, p50/p99.
 *
 * Matching a delivery to its view: views cycle through CARDS cards, so the delivery's `cardId`
 * names the card, and its envelope `timestamp` (the dispatch instant, taken while the view was
 * being served) falls inside exactly one view's [sent, responded] window of that card.
 */
import { createCard, createEndpoints, registerUser } from '../lib/api.ts';
import { paceViews, sendViews, type PacedView } from '../lib/load.ts';
import type { Scenario } from '../lib/scenario.ts';
import { withStore } from '../lib/scenario.ts';
import { percentile } from '../lib/stats.ts';

const RATE = 500;
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
      const owner = await registerUser(service.origin, 'lat');
      await ctx.receiver.setSecrets(await createEndpoints(service.origin, owner, [`${ctx.receiver.origins[0]}/latency/0`]));
      const cards: string[] = [];
      for (let i = 0; i < CARDS; i++) cards.push(await createCard(service.origin, owner, `Card ${i}`));
      const paths = cards.map((id) => `/api/u/${owner.username}/card/${id}`);
      // Warm-up (JIT, connection pools), not measured; its deliveries drain first, so the
      // measured run starts from an empty queue rather than behind a burst.
      await ctx.receiver.reset();
      await sendViews(service.origin, paths[0] as string, WARMUP_VIEWS, 16);
      await ctx.receiver.waitForUnique(WARMUP_VIEWS, 60_000);

      await ctx.receiver.reset(true);
      const views = await paceViews(service.origin, paths, RATE, SECONDS * 1000);
      const sentFor = (views.at(-1)?.respondedAt ?? 0) - (views[0]?.sentAt ?? 0);
      await ctx.receiver.waitForUnique(views.length, 60_000);
      const records = await ctx.receiver.records();

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
        if (view) latencies.push(record.receivedAt - view.respondedAt);
        else unmatched++;
      }
      ctx.log(
        `${views.length} views in ${Math.round(sentFor)} ms (${Math.round((views.length / sentFor) * 1000)}/s); ${latencies.length} matched, ${unmatched} unmatched`,
      );
      const viewMs = views.map((v) => v.respondedAt - v.sentAt);
      return [
        { figure: 'view response p50', unit: 'ms', value: percentile(viewMs, 50) },
        { figure: 'latency p50', unit: 'ms', value: percentile(latencies, 50) },
        { figure: 'latency p99', unit: 'ms', value: percentile(latencies, 99), goal: { op: '<=', value: 50 } },
        { figure: 'views/s achieved (goal rate 500)', unit: '/s', value: (views.length / sentFor) * 1000 },
      ];
    });
  },
};
