/**
 * What a scenario costs, besides its time: CPU of the service and of the PostgreSQL server
 * (Linux `/proc` ticks) and the WAL PostgreSQL wrote (`pg_stat_wal`).
 *
 * CPU of a process tree = for every live process in it, utime + stime + cutime + cstime. The
 * c-fields hold the time of children that exited and were waited for (a PostgreSQL backend that
 * disconnected is reaped by the postmaster), so a delta between two readings counts processes
 * that started or ended in between too. Both readings are cluster- and tree-wide: any other work
 * on the same PostgreSQL server during the window is counted, and so is its WAL.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import type pg from 'pg';

interface ProcStat {
  pid: number;
  ppid: number;
  comm: string;
  /** utime + stime + cutime + cstime, in clock ticks. */
  ticks: number;
}

let ticksPerSecond: number | undefined;

/** The kernel's clock ticks per second (`getconf CLK_TCK`, almost always 100). */
export function clockTicksPerSecond(): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

function readStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // "pid (comm) state ppid …": comm may hold spaces and parentheses, so split after the last ')'.
  const close = text.lastIndexOf(')');
  const comm = text.slice(text.indexOf('(') + 1, close);
  const fields = text.slice(close + 2).split(' ');
  // fields[0] is field 3 (state); utime, stime, cutime, cstime are fields 14–17.
  const at = (field: number) => Number(fields[field - 3]);
  return { pid, ppid: at(4), comm, ticks: at(14) + at(15) + at(16) + at(17) };
}

/** Clock ticks used so far by `rootPid` and every process under it (live or reaped); NaN when it is gone. */
export function treeTicks(rootPid: number): number {
  const all: ProcStat[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readStat(Number(entry));
    if (stat) all.push(stat);
  }
  const children = new Map<number, ProcStat[]>();
  for (const stat of all) {
    const list = children.get(stat.ppid);
    if (list) list.push(stat);
    else children.set(stat.ppid, [stat]);
  }
  const root = all.find((stat) => stat.pid === rootPid);
  if (!root) return Number.NaN;
  let ticks = 0;
  const stack = [root];
  for (let stat = stack.pop(); stat; stat = stack.pop()) {
    ticks += stat.ticks;
    stack.push(...(children.get(stat.pid) ?? []));
  }
  return ticks;
}

/**
 * The postmaster's pid, if the PostgreSQL server of `client` runs on this machine in this pid
 * namespace: the parent of the client's backend, itself a `postgres` process.
 */
export async function findPostmaster(client: pg.Client): Promise<number | undefined> {
  const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
  const backend = readStat(rows[0]?.pid ?? -1);
  if (!backend || !backend.comm.startsWith('postgres')) return undefined;
  const postmaster = readStat(backend.ppid);
  return postmaster?.comm.startsWith('postgres') ? postmaster.pid : undefined;
}

export interface Wal {
  records: number;
  bytes: number;
}

export async function readWal(client: pg.Client): Promise<Wal> {
  const { rows } = await client.query<{ records: string; bytes: string }>(
    'SELECT wal_records::text AS records, wal_bytes::text AS bytes FROM pg_stat_wal',
  );
  return { records: Number(rows[0]?.records), bytes: Number(rows[0]?.bytes) };
}

/**
 * A backend reports its WAL counters to `pg_stat_wal` at most once a second, and an idle one
 * only after PGSTAT_IDLE_INTERVAL (10 s) or when it exits: waiting this long makes every
 * earlier write visible.
 */
export const STATS_FLUSH_MS = 11_000;

export interface CostWindow {
  /** Service CPU (its process tree), µs. */
  serviceMicros: number;
  /** Every process of the PostgreSQL server, µs; NaN when the server is not local. */
  postgresMicros: number;
}

/** Starts a CPU window over the service's process tree and the PostgreSQL server's. */
export function startCpuWindow(servicePid: number, postmasterPid: number | undefined): () => CostWindow {
  const read = () => ({
    service: treeTicks(servicePid),
    postgres: postmasterPid === undefined ? Number.NaN : treeTicks(postmasterPid),
  });
  const before = read();
  return () => {
    const after = read();
    const micros = 1_000_000 / clockTicksPerSecond();
    return { serviceMicros: (after.service - before.service) * micros, postgresMicros: (after.postgres - before.postgres) * micros };
  };
}

/**
 * Starts a window over the whole machine's CPUs (`/proc/stat`): the share of their time that was
 * busy (user, nice, system, irq, softirq, steal) rather than idle or waiting for I/O, every
 * process counted, the load generator and the receiver included.
 */
export function startMachineWindow(): () => number {
  const read = () => {
    const fields = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').trim().split(/\s+/).slice(1).map(Number);
    const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = fields;
    const busy = user + nice + system + irq + softirq + steal;
    return { busy, total: busy + idle + iowait };
  };
  const before = read();
  return () => {
    const after = read();
    return (after.busy - before.busy) / (after.total - before.total);
  };
}
