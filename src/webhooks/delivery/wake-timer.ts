/**
 * The worker's one alarm clock: aimed at the earliest row known to come due (a retry, an open
 * coalescing delivery). Rows hold no memory here; the wake only makes the worker look again.
 */

/** Shortest timer: keeps a row that is due but not claimable (locked elsewhere) from spinning the loop. */
const MIN_WAKE_DELAY_MS = 25;
/** Longest timer: a look every hour costs nothing, and setTimeout fires at once past about 24.8 days. */
const MAX_WAKE_DELAY_MS = 3_600_000;

export class WakeTimer {
  #timer: NodeJS.Timeout | undefined;
  #wakeAt: number | undefined;

  /** `horizonMs`: see WAKE_HORIZON_MS. */
  constructor(
    private readonly horizonMs: number,
    private readonly onWake: () => void,
  ) {}

  /** Wakes in `delayMs` unless a wake is due sooner already. */
  schedule(delayMs: number): void {
    // A far row: wake half a horizon before it; the refresh that follows every wake then aims at the row itself.
    const wakeIn = delayMs > this.horizonMs ? delayMs - this.horizonMs / 2 : delayMs;
    const at = Date.now() + Math.min(MAX_WAKE_DELAY_MS, Math.max(MIN_WAKE_DELAY_MS, wakeIn));
    if (this.#wakeAt !== undefined && this.#wakeAt <= at) return;
    clearTimeout(this.#timer);
    this.#wakeAt = at;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#wakeAt = undefined;
      this.onWake();
    }, at - Date.now());
  }

  clear(): void {
    clearTimeout(this.#timer);
  }
}
