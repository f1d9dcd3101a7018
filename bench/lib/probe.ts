/**
 * Child-process entry that runs a service entry point unchanged (`src/server.ts` or
 * `src/worker.ts`, the same module `pnpm start` / `pnpm worker` run) and answers the bench's
 * memory questions over the IPC channel. Started with --expose-gc so "heap" means live heap.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

export type ProbeRequest = { type: 'memory'; id: number };
export type ProbeReply = { type: 'ready' } | { type: 'memory'; id: number; heapUsed: number; rss: number; peakRss: number };

const entry = process.argv[2];
if (!entry) throw new Error('usage: probe.ts <entry module>');

process.on('message', (message: ProbeRequest) => {
  if (message.type !== 'memory') return;
  // Two passes: the first may only queue finalizers that free more on the second.
  globalThis.gc?.();
  globalThis.gc?.();
  const { heapUsed, rss } = process.memoryUsage();
  send({ type: 'memory', id: message.id, heapUsed, rss, peakRss: peakRssBytes() });
});

await import(pathToFileURL(path.resolve(entry)).href);
send({ type: 'ready' });

function send(reply: ProbeReply): void {
  process.send?.(reply);
}

/** VmHWM: the most resident memory this process has had (Linux). */
function peakRssBytes(): number {
  const match = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'));
  return match ? Number(match[1]) * 1024 : Number.NaN;
}
