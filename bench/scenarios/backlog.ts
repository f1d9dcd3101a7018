/**
 * 4. Backlog (PostgreSQL): 1,000,000 pending deliveries due tomorrow, then 1,000 coming due →
 * the claim's plan and time with that table, the worker process's peak RSS, and the time from
 * the rows coming due to their last delivery.
 */
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { claimStatement } from '../../src/webhooks/queue/claim.ts';
import { CLAIM_AHEAD, DEFAULT_MAX_IN_FLIGHT, DEFAULT_MAX_IN_FLIGHT_PER_ENDPOINT } from '../../src/webhooks/delivery/worker-options.ts';
import { createEndpoints, registerUser } from '../lib/api.ts';
import { nowMs } from '../lib/clock.ts';
import type { Scenario } from '../lib/scenario.ts';
import { settle, withStore } from '../lib/scenario.ts';
import { endpointIdsOf, insertDeliveries } from '../lib/seed.ts';
import { percentile } from '../lib/stats.ts';
import { collectScans } from '../lib/query-plan.ts';

const BACKLOG = 1_000_000;
const COMING_DUE = 1_000;
const DUE_IN_MS = 12_000;
const CLAIM_SAMPLES = 15;
const MB = 1024 * 1024;

export const backlogScenario: Scenario = {
  name: '4. backlog of 1M',
  skip: (kind) =>
    kind === 'embedded'
      ? 'a worker process cannot share the single-process embedded store, and 1M rows in WASM PostgreSQL take minutes to write'
      : undefined,
  async run(ctx) {
    return withStore(ctx, async (store, start) => {
      const pool = store.pool as pg.Pool;
      const api = await start('server', { WEBHOOK_WORKER: 'off' });
      const owner = await registerUser(api.origin, 'backlog');
      const urls = ctx.receiver.origins.slice(0, 5).map((origin, i) => `${origin}/backlog/${i}`);
      await ctx.receiver.setSecrets(await createEndpoints(api.origin, owner, urls));
      const endpointIds = await endpointIdsOf(pool, owner.id);

      let t = nowMs();
      await insertDeliveries(pool, { endpointIds, ownerId: owner.id, count: BACKLOG, dueInMs: 86_400_000 });
      await pool.query('ANALYZE webhook_queue, webhook_events');
      ctx.log(`inserted ${BACKLOG} future rows in ${Math.round(nowMs() - t)} ms`);

      // Claims measured with the due rows present, each rolled back so the rows stay for the worker.
      await insertDeliveries(pool, { endpointIds, ownerId: owner.id, count: COMING_DUE, dueInMs: -1_000 });
      // The million-row setup is flushed first: the claim is measured, not the checkpoint it set off.
      await settle(ctx.databaseUrl);
      const claim = await measureClaim(pool);
      ctx.log(
        `claim of ${claim.rows} rows; plan: ${claim.indexes.join(', ') || 'no index'}${claim.seqScan ? ' + SEQ SCAN on webhook_queue' : ''}`,
      );
      const { rows } = await pool.query<{ due: Date }>(
        `UPDATE webhook_queue SET due_at = now() + $1::int * interval '1 millisecond'
         WHERE due_at <= now() RETURNING due_at AS due`,
        [DUE_IN_MS],
      );
      const dueAt = rows[0]?.due.getTime() ?? Number.NaN;

      await ctx.receiver.reset();
      const worker = await start('worker');
      const idle = await worker.memory();
      if (nowMs() > dueAt) ctx.log('worker started after the rows came due: the delivery time includes its start-up');
      const stats = await ctx.receiver.waitForUnique(COMING_DUE, 120_000);
      const after = await worker.memory();
      t = stats.lastAt - dueAt;
      ctx.log(
        `worker rss idle ${Math.round(idle.rss / MB)} MB, after ${Math.round(after.rss / MB)} MB, peak ${Math.round(after.peakRss / MB)} MB`,
      );
      return [
        { figure: 'claim time (p50 of 15; 160 rows)', unit: 'ms', value: claim.p50Ms, goal: { op: '<=', value: 10 } },
        {
          figure: 'claim plan uses an index (1 = yes)',
          unit: '',
          value: claim.indexes.length > 0 && !claim.seqScan ? 1 : 0,
          goal: { op: '>=', value: 1 },
        },
        { figure: 'worker peak RSS', unit: 'MB', value: after.peakRss / MB, goal: { op: '<=', value: 250 } },
        { figure: '1,000 due → delivered', unit: 'ms', value: t },
      ];
    });
  },
};

/** The claim a worker with nothing held makes (its default window), timed and EXPLAINed inside rolled-back transactions. */
async function measureClaim(pool: pg.Pool): Promise<{ p50Ms: number; rows: number; indexes: string[]; seqScan: boolean }> {
  const options = {
    limit: CLAIM_AHEAD * DEFAULT_MAX_IN_FLIGHT,
    leaseMs: 70_000,
    perEndpointLimit: CLAIM_AHEAD * DEFAULT_MAX_IN_FLIGHT_PER_ENDPOINT,
    inFlightByEndpoint: new Map<string, number>(),
  };
  const client = await pool.connect();
  try {
    const times: number[] = [];
    let rows = 0;
    for (let i = 0; i < CLAIM_SAMPLES; i++) {
      const { text, params } = claimStatement(options, undefined, randomUUID());
      await client.query('BEGIN');
      const t = nowMs();
      rows = (await client.query(text, params)).rowCount ?? 0;
      times.push(nowMs() - t);
      await client.query('ROLLBACK');
    }
    const { text, params } = claimStatement(options, undefined, randomUUID());
    await client.query('BEGIN');
    const explained = await client.query<{ 'QUERY PLAN': unknown }>(`EXPLAIN (FORMAT JSON) ${text}`, params);
    await client.query('ROLLBACK');
    const scans = collectScans(explained.rows[0]?.['QUERY PLAN']);
    return {
      p50Ms: percentile(times, 50),
      rows,
      indexes: [...new Set(scans.filter((s) => s.index).map((s) => s.index as string))],
      seqScan: scans.some((s) => s.type === 'Seq Scan' && s.relation === 'webhook_queue'),
    };
  } finally {
    client.release();
  }
}
