import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

/** libuv's default; the tests run without UV_THREADPOOL_SIZE. */
export const THREAD_POOL_SIZE = Number(process.env.UV_THREADPOOL_SIZE ?? 4);

/**
 * Occupies every libuv thread-pool thread, as a tenant's hung getaddrinfo calls would: each
 * runs an open() of a FIFO that has no writer yet, which blocks until `release` opens it for
 * writing (synchronously, on the main thread, since the pool is busy).
 */
export function blockThreadPool(): { release(): Promise<void> } {
  const dir = mkdtempSync(path.join(tmpdir(), 'thread-pool-'));
  const fifo = path.join(dir, 'fifo');
  execFileSync('mkfifo', [fifo]);
  const readers = Array.from({ length: THREAD_POOL_SIZE }, () => open(fifo, 'r'));
  return {
    async release() {
      // Held open until every reader is through, so a reader that starts late still finds a writer.
      const writer = openSync(fifo, 'w');
      for (const reader of readers) await (await reader).close();
      closeSync(writer);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
