/**
 * Starts the service the way a user does — `src/server.ts` or `src/worker.ts` through tsx, with
 * production settings — in a child process, behind the memory probe (probe.ts).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { ProbeReply } from './probe.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const PROBE = fileURLToPath(new URL('./probe.ts', import.meta.url));

/** Production settings, plus what a benchmark on one machine needs (see bench/README.md). */
export const SERVICE_ENV: Record<string, string> = {
  NODE_ENV: 'production',
  LOG_LEVEL: 'warn',
  JWT_SECRET: 'bench-jwt-secret-that-is-long-enough-0123456789',
  WEBHOOK_ENCRYPTION_KEY: Buffer.alloc(32, 11).toString('base64'),
  // The receiver is on 127.0.0.1.
  WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'true',
  // All load comes from one client address; the per-address limits would turn it into 429s.
  RATE_LIMIT_PUBLIC_PER_MINUTE: '10000000',
  RATE_LIMIT_AUTH_PER_MINUTE: '10000',
  RATE_LIMIT_API_PER_MINUTE: '100000',
};

export interface Memory {
  heapUsed: number;
  rss: number;
  peakRss: number;
}

export interface Service {
  /** `http://127.0.0.1:<port>` (servers only). */
  origin: string;
  pid: number;
  /** Live heap after a full GC, and resident memory, of the service process. */
  memory(): Promise<Memory>;
  stop(): Promise<void>;
}

export async function startService(kind: 'server' | 'worker', env: Record<string, string>): Promise<Service> {
  const port = await freePort();
  const cpuProf = process.env.BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] : [];
  const child = fork(PROBE, [`src/${kind}.ts`], {
    cwd: ROOT,
    execArgv: ['--import', 'tsx', '--expose-gc', ...cpuProf, ...(process.env.BENCH_PERF ? ['--perf-basic-prof'] : [])],
    env: { PATH: process.env.PATH ?? '', ...SERVICE_ENV, PORT: String(port), ...env },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  await waitForReady(child, kind);
  let nextId = 0;
  return {
    origin: `http://127.0.0.1:${port}`,
    pid: child.pid ?? -1,
    memory() {
      const id = ++nextId;
      return new Promise<Memory>((resolve) => {
        const onMessage = (reply: ProbeReply) => {
          if (reply.type !== 'memory' || reply.id !== id) return;
          child.off('message', onMessage);
          resolve({ heapUsed: reply.heapUsed, rss: reply.rss, peakRss: reply.peakRss });
        };
        child.on('message', onMessage);
        child.send({ type: 'memory', id });
      });
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

function waitForReady(child: ChildProcess, kind: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onMessage = (reply: ProbeReply) => {
      if (reply.type !== 'ready') return;
      cleanup();
      resolve();
    };
    const onExit = (code: number | null) => {
      cleanup();
      reject(new Error(`${kind} exited with ${code} before it was ready`));
    };
    const cleanup = () => {
      child.off('message', onMessage);
      child.off('exit', onExit);
    };
    child.on('message', onMessage);
    child.on('exit', onExit);
  });
}

async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  server.close();
  if (typeof address !== 'object' || address === null) throw new Error('no port');
  return address.port;
}
