/** The bench side of the receiver process (receiver-process.ts). */
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { sleep } from './clock.ts';
import type { ReceivedRecord, ReceiverReply, ReceiverRequest, ReceiverStats } from './receiver-process.ts';

const ENTRY = fileURLToPath(new URL('./receiver-process.ts', import.meta.url));

export interface Receiver {
  /** One origin per port: `http://127.0.0.1:<port>`. */
  origins: string[];
  /** Tells it the secret of each path it will be sent to. */
  setSecrets(secrets: Record<string, string>): Promise<void>;
  /** Clears the counts; `record` keeps every request's timing (latency scenario). */
  reset(record?: boolean): Promise<void>;
  stats(): Promise<ReceiverStats>;
  records(): Promise<ReceivedRecord[]>;
  /** Resolves with the stats once `count` distinct deliveries arrived; throws after `timeoutMs`. */
  waitForUnique(count: number, timeoutMs: number): Promise<ReceiverStats>;
  close(): Promise<void>;
}

export async function startReceiver(ports: number): Promise<Receiver> {
  const child = fork(ENTRY, [String(ports)], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const [first] = (await once(child, 'message')) as [ReceiverReply];
  if (first.type !== 'ports') throw new Error('receiver did not start');

  // Requests are answered in order, so one pending queue is enough.
  const pending: Array<(reply: ReceiverReply) => void> = [];
  child.on('message', (reply: ReceiverReply) => pending.shift()?.(reply));
  const ask = (request: ReceiverRequest): Promise<ReceiverReply> =>
    new Promise((resolve) => {
      pending.push(resolve);
      child.send(request);
    });
  const stats = async () => {
    const reply = await ask({ type: 'stats' });
    if (reply.type !== 'stats') throw new Error('unexpected receiver reply');
    return reply.stats;
  };

  return {
    origins: first.ports.map((port) => `http://127.0.0.1:${port}`),
    async setSecrets(secrets) {
      await ask({ type: 'secrets', secrets });
    },
    async reset(record = false) {
      await ask({ type: 'reset', record });
    },
    stats,
    async records() {
      const reply = await ask({ type: 'records' });
      if (reply.type !== 'records') throw new Error('unexpected receiver reply');
      return reply.records;
    },
    async waitForUnique(count, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const current = await stats();
        if (current.unique >= count) return current;
        if (Date.now() > deadline) throw new Error(`receiver got ${current.unique} of ${count} deliveries in ${timeoutMs} ms`);
        await sleep(50);
      }
    },
    async close() {
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      await exited;
    },
  };
}
