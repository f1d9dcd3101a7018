/** Load generators for the public view route: closed-loop (as fast as N clients go) and paced (open loop). */
import { Pool } from 'undici';
import { nowMs, sleep } from './clock.ts';

async function view(pool: Pool, path: string): Promise<void> {
  const res = await pool.request({ method: 'GET', path });
  await res.body.dump();
  if (res.statusCode !== 200) throw new Error(`GET ${path}: ${res.statusCode}`);
}

/** `count` views of `path` by `concurrency` clients, each sending its next view when the last one answered. */
export async function sendViews(origin: string, path: string, count: number, concurrency: number): Promise<void> {
  const pool = new Pool(origin, { connections: concurrency });
  let next = 0;
  const client = async () => {
    while (next < count) {
      next++;
      await view(pool, path);
    }
  };
  try {
    await Promise.all(Array.from({ length: concurrency }, client));
  } finally {
    await pool.close();
  }
}

export interface PacedView {
  path: string;
  sentAt: number;
  respondedAt: number;
}

/**
 * Views at a steady `perSecond`, whatever the response times (an open loop, like independent
 * visitors), cycling through `paths`. Returns every view's send and response instants. A view
 * is skipped (not sent) while a second's worth is still unanswered: the service is then
 * saturated, which the achieved rate shows, and the run still ends on time.
 */
export async function paceViews(origin: string, paths: readonly string[], perSecond: number, durationMs: number): Promise<PacedView[]> {
  const pool = new Pool(origin, { connections: 128 });
  const total = Math.round((perSecond * durationMs) / 1000);
  const done: PacedView[] = [];
  const inFlight: Array<Promise<void>> = [];
  const start = nowMs();
  let sent = 0;
  let outstanding = 0;
  try {
    while (sent < total) {
      const due = Math.min(total, Math.floor(((nowMs() - start) * perSecond) / 1000) + 1);
      for (; sent < due; sent++) {
        if (outstanding >= perSecond) continue;
        const path = paths[sent % paths.length] as string;
        const sentAt = nowMs();
        outstanding++;
        inFlight.push(
          view(pool, path).then(() => {
            outstanding--;
            done.push({ path, sentAt, respondedAt: nowMs() });
          }),
        );
      }
      await sleep(2);
    }
    await Promise.all(inFlight);
  } finally {
    await pool.close();
  }
  return done;
}
