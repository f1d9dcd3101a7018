/**
 * 2. View-path overhead: GET /api/u/:username under autocannon for an owner with 5 subscribed
 * endpoints and for one with none, same duration and connections, one service → p50/p99 ratios.
 * The service delivers in-process (the default), so the "with" run also pays for delivering.
 *
 * Those runs are closed-loop: each connection sends its next view as soon as the last is
 * answered, so both run at the machine's capacity and the p50s are mostly queueing, the "with"
 * run's capacity shared with 5 deliveries per view. The same pair again at a fixed offered
 * rate, half what the "with" run managed, the views evenly spaced whatever the answers (an open
 * loop, lib/load.ts), shows the view path's own overhead below saturation (a figure beside the
 * goal's, not instead of it).
 *
 * Each run starts once the receiver has every delivery of the runs before (a hooked run can
 * leave some behind it), so that no run is measured with another's deliveries going on.
 *
 * Last, the closed-loop pair again on a fresh store, with a service that serves the API only
 * (`WEBHOOK_WORKER=off`) and no worker anywhere: the view path's own overhead (the event and its
 * five rows written in the view's statement) with no delivery sharing the two cores, which
 * bounds what any scheduling of the in-process worker could bring the goal's ratio down to.
 */
import autocannon from 'autocannon';
import { createEndpoints, registerUser } from '../lib/api.ts';
import { paceViews } from '../lib/load.ts';
import type { Measurement, Scenario } from '../lib/scenario.ts';
import { withStore } from '../lib/scenario.ts';
import { percentile } from '../lib/stats.ts';

const CONNECTIONS = 8;
const SECONDS = 8;
const WARMUP_SECONDS = 2;

interface Run {
  p50: number;
  p99: number;
  rps: number;
  views: number;
}

/**
 * autocannon's own percentiles are whole milliseconds, too coarse where a view takes 2 ms; its
 * `response` event has each response time to the microsecond, so the percentiles come from those.
 */
async function hammer(url: string, duration: number): Promise<Run> {
  const times: number[] = [];
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon({ url, connections: CONNECTIONS, duration }, (error, done) =>
      error ? reject(error instanceof Error ? error : new Error(String(error))) : resolve(done),
    );
    instance.on('response', (_client, _status, _bytes, responseTime) => times.push(responseTime));
  });
  if (result.non2xx > 0 || result.errors > 0) throw new Error(`${url}: ${result.non2xx} non-2xx, ${result.errors} errors`);
  return { p50: percentile(times, 50), p99: percentile(times, 99), rps: result.requests.average, views: result.requests.total };
}

/**
 * Views at a steady rate, evenly spaced (lib/load.ts), whatever the response times. Not
 * autocannon's `overallRate`: that is a budget per connection per second, which its connections
 * spend closed-loop at the start of each second, so its p50 was the closed loop's again.
 */
async function paced(origin: string, path: string, perSecond: number): Promise<Run> {
  const views = await paceViews(origin, [path], perSecond, SECONDS * 1000);
  const times = views.map((view) => view.respondedAt - view.sentAt);
  return { p50: percentile(times, 50), p99: percentile(times, 99), rps: views.length / SECONDS, views: views.length };
}

const ms = (value: number): string => `${value.toFixed(2)} ms`;

/** An owner with an endpoint at each of `urls` and one with none: their profile pages, and the endpoints' secrets. */
async function twoOwners(
  origin: string,
  urls: readonly string[],
): Promise<{ hookedPath: string; plainPath: string; secrets: Record<string, string> }> {
  const withHooks = await registerUser(origin, 'hooked');
  const without = await registerUser(origin, 'plain');
  const secrets = await createEndpoints(origin, withHooks, urls);
  return { hookedPath: `/api/u/${withHooks.username}`, plainPath: `/api/u/${without.username}`, secrets };
}

/**
 * The closed-loop pair on a service with no worker: its deliveries stay queued, and the store
 * they are in is dropped with them.
 */
async function viewPathAlone(
  start: (kind: 'server', env: Record<string, string>) => Promise<{ origin: string }>,
  urls: readonly string[],
): Promise<{ none: Run; five: Run }> {
  const { origin } = await start('server', { WEBHOOK_WORKER: 'off' });
  const { hookedPath, plainPath } = await twoOwners(origin, urls);
  await hammer(`${origin}${plainPath}`, WARMUP_SECONDS);
  await hammer(`${origin}${hookedPath}`, WARMUP_SECONDS);
  return { none: await hammer(`${origin}${plainPath}`, SECONDS), five: await hammer(`${origin}${hookedPath}`, SECONDS) };
}

export const viewOverheadScenario: Scenario = {
  name: '2. view-path overhead',
  async run(ctx) {
    const urls = ctx.receiver.origins.slice(0, 5).map((origin, i) => `${origin}/overhead/${i}`);
    const measured = await withStore(ctx, async (_store, start): Promise<Measurement[]> => {
      const service = await start('server');
      const { hookedPath, plainPath, secrets } = await twoOwners(service.origin, urls);
      await ctx.receiver.setSecrets(secrets);
      await ctx.receiver.reset();
      let hookedViews = 0;
      const drained = async (run: Run) => {
        hookedViews += run.views;
        await ctx.receiver.waitForUnique(hookedViews * urls.length, 120_000);
        return run;
      };
      const hooked = `${service.origin}${hookedPath}`;
      const plain = `${service.origin}${plainPath}`;
      await hammer(plain, WARMUP_SECONDS);
      await drained(await hammer(hooked, WARMUP_SECONDS));
      const none = await hammer(plain, SECONDS);
      const five = await drained(await hammer(hooked, SECONDS));
      ctx.log(
        `no endpoints: p50 ${ms(none.p50)} p99 ${ms(none.p99)} ${Math.round(none.rps)}/s; 5 endpoints: p50 ${ms(five.p50)} p99 ${ms(five.p99)} ${Math.round(five.rps)}/s`,
      );
      const rate = Math.max(1, Math.round(five.rps / 2));
      const noneAtRate = await paced(service.origin, plainPath, rate);
      const fiveAtRate = await drained(await paced(service.origin, hookedPath, rate));
      ctx.log(
        `at ${rate} views/s, paced: no endpoints p50 ${ms(noneAtRate.p50)} p99 ${ms(noneAtRate.p99)}; 5 endpoints p50 ${ms(fiveAtRate.p50)} p99 ${ms(fiveAtRate.p99)}`,
      );
      return [
        { figure: 'p50, 0 endpoints', unit: 'ms', value: none.p50 },
        { figure: 'p50, 5 endpoints', unit: 'ms', value: five.p50 },
        { figure: 'p50 ratio', unit: '', value: five.p50 / none.p50, goal: { op: '<=', value: 1.5 } },
        { figure: 'p99 ratio', unit: '', value: five.p99 / none.p99 },
        { figure: 'views/s ratio (5 / 0 endpoints)', unit: '', value: five.rps / none.rps },
        { figure: 'offered views/s, half the 5-endpoint rate', unit: '/s', value: rate },
        { figure: 'p50 ratio at that offered rate', unit: '', value: fiveAtRate.p50 / noneAtRate.p50 },
      ];
    });
    const apiOnly = await withStore(ctx, (_store, start) => viewPathAlone(start, urls));
    ctx.log(
      `API only, no worker: no endpoints p50 ${ms(apiOnly.none.p50)} ${Math.round(apiOnly.none.rps)}/s; 5 endpoints p50 ${ms(apiOnly.five.p50)} ${Math.round(apiOnly.five.rps)}/s`,
    );
    return [
      ...measured,
      { figure: 'p50 ratio, API only (no worker)', unit: '', value: apiOnly.five.p50 / apiOnly.none.p50 },
      { figure: 'views/s ratio, API only (no worker)', unit: '', value: apiOnly.five.rps / apiOnly.none.rps },
    ];
  },
};
