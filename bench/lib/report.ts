/** The results table (stdout) and bench/results/latest.json. */
import { writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { meets, type Goal } from './scenario.ts';
import { round } from './stats.ts';
import type { StoreKind } from './stores.ts';

export interface Row {
  scenario: string;
  figure: string;
  unit: string;
  goal?: Goal;
  /** A number, or why there is none (skipped, failed). */
  values: Partial<Record<StoreKind, number | string>>;
}

const KINDS: StoreKind[] = ['postgres', 'embedded'];

function show(value: number | string | undefined, unit: string): string {
  if (value === undefined) return '-';
  if (typeof value === 'string') return value;
  const digits = Math.abs(value) >= 100 ? 0 : Math.abs(value) >= 10 ? 1 : 2;
  return `${round(value, digits).toLocaleString('en-US')}${unit && unit !== '/s' ? ` ${unit}` : unit}`;
}

function verdict(value: number | string | undefined, goal: Goal | undefined): string {
  if (!goal) return '';
  if (typeof value !== 'number') return 'n/a';
  return meets(value, goal) ? 'PASS' : 'FAIL';
}

export function renderTable(rows: readonly Row[]): string {
  const header = ['scenario', 'figure', 'PostgreSQL', 'embedded', 'goal', 'PG', 'emb.'];
  const lines = rows.map((row) => [
    row.scenario,
    row.figure,
    show(row.values.postgres, row.unit),
    show(row.values.embedded, row.unit),
    row.goal ? `${row.goal.op} ${show(row.goal.value, row.unit)}` : '',
    verdict(row.values.postgres, row.goal),
    verdict(row.values.embedded, row.goal),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] ?? '').length)));
  const format = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ')} |`;
  return [format(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...lines.map(format)].join('\n');
}

export function writeResults(file: string, rows: readonly Row[], meta: Record<string, unknown>): void {
  const results = rows.map((row) => ({
    scenario: row.scenario,
    figure: row.figure,
    unit: row.unit,
    goal: row.goal ?? null,
    ...Object.fromEntries(
      KINDS.map((kind) => {
        const value = row.values[kind];
        return [
          kind,
          {
            value: typeof value === 'number' ? round(value, 3) : null,
            note: typeof value === 'string' ? value : null,
            pass: row.goal ? verdict(value, row.goal) : null,
          },
        ];
      }),
    ),
  }));
  const machine = {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    memoryGb: round(totalmem() / 2 ** 30, 1),
    node: process.version,
  };
  writeFileSync(file, `${JSON.stringify({ ...meta, machine, results }, null, 2)}\n`);
}
