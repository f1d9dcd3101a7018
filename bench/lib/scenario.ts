/** What a scenario gets and what it reports. */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import pg from 'pg';
import type { Receiver } from './receiver.ts';
import { startService, type Service } from './service.ts';
import { createStore, type BenchStore, type StoreKind } from './stores.ts';

export interface Goal {
  op: '>=' | '<=';
  value: number;
}

/** One figure of one scenario on one store. */
export interface Measurement {
  figure: string;
  unit: string;
  /** A number, or why there is none on this store (e.g. `n/a`). */
  value: number | string;
  goal?: Goal;
}

/** Figures one scenario hands to a later one in the same run (the run order is fixed in run.ts). */
export interface SharedResults {
  /** Deliveries/s of the throughput scenario, per store. */
  throughput: Partial<Record<StoreKind, number>>;
}

export interface ScenarioContext {
  kind: StoreKind;
  databaseUrl: string;
  receiver: Receiver;
  shared: SharedResults;
  /** `--wal-breakdown`: say where the WAL went (lib/wal-breakdown.ts). */
  walBreakdown: boolean;
  log(message: string): void;
}

export interface Scenario {
  name: string;
  /** Returns a reason instead of running when the scenario does not apply to a store. */
  skip?(kind: StoreKind): string | undefined;
  run(ctx: ScenarioContext): Promise<Measurement[]>;
}

export function meets(value: number, goal: Goal): boolean {
  return goal.op === '>=' ? value >= goal.value : value <= goal.value;
}

/**
 * A fresh store and the services a scenario starts on it; everything is stopped and the store
 * dropped afterwards, whatever happens.
 */
export async function withStore<T>(
  ctx: ScenarioContext,
  body: (store: BenchStore, start: (kind: 'server' | 'worker', env?: Record<string, string>) => Promise<Service>) => Promise<T>,
): Promise<T> {
  await settle(ctx.databaseUrl);
  const store = await createStore(ctx.kind, ctx.databaseUrl);
  const services: Service[] = [];
  try {
    return await body(store, async (kind, env = {}) => {
      const service = await startService(kind, { ...store.env, ...env });
      services.push(service);
      return service;
    });
  } finally {
    for (const service of services.reverse()) await service.stop();
    await store.drop();
  }
}

/**
 * Flushes what was written so far — the OS page cache (the embedded store's files) and
 * PostgreSQL's dirty buffers — so a measurement does not include the disk catching up with an
 * earlier scenario or with its own setup (every commit waits for its WAL flush). Best effort:
 * CHECKPOINT needs a superuser.
 */
export async function settle(databaseUrl: string): Promise<void> {
  await promisify(execFile)('sync').catch(() => {});
  const client = new pg.Client({ connectionString: databaseUrl });
  try {
    await client.connect();
    await client.query('CHECKPOINT');
  } catch {
    // Not a superuser, or no PostgreSQL: the scenario runs unsettled.
  } finally {
    await client.end().catch(() => {});
  }
}
