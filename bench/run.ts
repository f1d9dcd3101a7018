/**
 * `pnpm bench`: every scenario on PostgreSQL (DATABASE_URL, default the local server) and on
 * the embedded store, a table on stdout, and bench/results/latest.json.
 *
 *   pnpm bench                       # everything
 *   pnpm bench --only=throughput     # scenarios whose name contains the text
 *   pnpm bench --store=postgres      # one store only
 *   pnpm bench --wal-breakdown       # where the throughput scenario's WAL went, by relation (pg_waldump)
 */
import { fileURLToPath } from 'node:url';
import { nowMs } from './lib/clock.ts';
import { startReceiver } from './lib/receiver.ts';
import { renderTable, writeResults, type Row } from './lib/report.ts';
import type { Scenario, SharedResults } from './lib/scenario.ts';
import type { StoreKind } from './lib/stores.ts';
import { backlogScenario } from './scenarios/backlog.ts';
import { dispatchLatencyScenario } from './scenarios/dispatch-latency.ts';
import { memoryScenario } from './scenarios/memory.ts';
import { throughputScenario } from './scenarios/throughput.ts';
import { viewOverheadScenario } from './scenarios/view-overhead.ts';

const DEFAULT_DATABASE_URL = 'postgresql://postgres@127.0.0.1:5432/test';
const RESULTS_FILE = fileURLToPath(new URL('./results/latest.json', import.meta.url));

const scenarios: Scenario[] = [throughputScenario, viewOverheadScenario, dispatchLatencyScenario, backlogScenario, memoryScenario];

const args = new Map(
  process.argv.slice(2).map((arg) => {
    const [key, value = ''] = arg.replace(/^--/, '').split('=');
    return [key ?? '', value];
  }),
);
/** `--only=throughput,latency`: scenarios whose name contains any of the texts. */
const walBreakdown = args.has('wal-breakdown');
const only = args.get('only')?.split(',').filter(Boolean);
const stores = (args.get('store')?.split(',') ?? ['postgres', 'embedded']) as StoreKind[];
const databaseUrl = process.env.DATABASE_URL ?? DEFAULT_DATABASE_URL;

const startedAt = nowMs();
const receiver = await startReceiver(5);
const rows: Row[] = [];
const shared: SharedResults = { throughput: {} };
const log = (message: string) => console.error(`[bench ${((nowMs() - startedAt) / 1000).toFixed(0).padStart(4)}s] ${message}`);

for (const scenario of scenarios.filter((s) => !only || only.some((text) => s.name.includes(text)))) {
  for (const kind of stores) {
    const skipped = scenario.skip?.(kind);
    if (skipped) {
      log(`${scenario.name} on ${kind}: skipped (${skipped})`);
      for (const row of rows.filter((r) => r.scenario === scenario.name)) row.values[kind] = 'skipped';
      continue;
    }
    log(`${scenario.name} on ${kind}`);
    try {
      const measured = await scenario.run({ kind, databaseUrl, receiver, shared, walBreakdown, log: (m) => log(`  ${m}`) });
      for (const m of measured) {
        let row = rows.find((r) => r.scenario === scenario.name && r.figure === m.figure);
        if (!row) rows.push((row = { scenario: scenario.name, figure: m.figure, unit: m.unit, goal: m.goal, values: {} }));
        row.values[kind] = m.value;
      }
    } catch (error) {
      log(`  FAILED: ${error instanceof Error ? error.stack : String(error)}`);
      const existing = rows.filter((r) => r.scenario === scenario.name);
      if (existing.length === 0) rows.push({ scenario: scenario.name, figure: '(run failed)', unit: '', values: { [kind]: 'error' } });
      for (const row of existing) row.values[kind] = 'error';
    }
  }
}
await receiver.close();

const seconds = Math.round((nowMs() - startedAt) / 1000);
console.log(renderTable(rows));
console.log(`\n${seconds} s in all. Written to bench/results/latest.json.`);
writeResults(RESULTS_FILE, rows, {
  command: 'pnpm bench',
  date: new Date().toISOString(),
  durationSeconds: seconds,
  databaseUrl: databaseUrl.replace(/\/\/[^@]*@/, '//…@'),
});
