/**
 * Each endpoint's recent pace in this worker: attempts finished per second, counted over the
 * last whole second in which it finished any. The claim pump lets a dispatch write an
 * endpoint's rows claimed for this worker as far ahead as that pace starts them within a few
 * seconds (claim-pump.ts), so a burst that outruns the sends does not leave most of its rows
 * for a backlog claim that would only hand them to this same worker a moment later.
 *
 * The pace is kept across idle time on purpose: an endpoint that answered 700 a second in its
 * last burst is expected to do so in the next. If it has slowed meanwhile, the rows held for it
 * that its lease no longer covers are handed back (delivery-worker.ts), as any held row is.
 */
export const PACE_WINDOW_MS = 1_000;
/** A pace older than this is forgotten (endpoints come and go; the map must not grow for ever). */
export const PACE_MEMORY_MS = 10 * 60_000;

export class EndpointPace {
  readonly #now: () => number;
  #windowStart: number;
  /** Finishes per endpoint in the current window; all of them fell within PACE_WINDOW_MS of its start. */
  #current = new Map<string, number>();
  /** Per endpoint: finishes per second in its last whole window with any, and when that window closed. */
  readonly #last = new Map<string, { perSecond: number; at: number }>();

  constructor(now: () => number = () => performance.now()) {
    this.#now = now;
    this.#windowStart = now();
  }

  /** An attempt of `endpointId` finished (whatever its outcome). */
  finished(endpointId: string): void {
    this.#roll();
    this.#current.set(endpointId, (this.#current.get(endpointId) ?? 0) + 1);
  }

  /** Attempts per second `endpointId` finished in its last whole window with any; 0 if none is known. */
  perSecond(endpointId: string): number {
    this.#roll();
    return this.#last.get(endpointId)?.perSecond ?? 0;
  }

  /** Forgets paces older than PACE_MEMORY_MS. */
  prune(): void {
    const oldest = this.#now() - PACE_MEMORY_MS;
    for (const [endpointId, pace] of this.#last) if (pace.at < oldest) this.#last.delete(endpointId);
  }

  /**
   * Closes the window once PACE_WINDOW_MS have passed. Every call rolls first, so a finish is
   * only ever counted in a window it fell within: however late the close, each count covers one
   * PACE_WINDOW_MS.
   */
  #roll(): void {
    const now = this.#now();
    if (now - this.#windowStart < PACE_WINDOW_MS) return;
    for (const [endpointId, count] of this.#current) this.#last.set(endpointId, { perSecond: (count * 1000) / PACE_WINDOW_MS, at: now });
    this.#current = new Map();
    this.#windowStart = now;
  }
}
