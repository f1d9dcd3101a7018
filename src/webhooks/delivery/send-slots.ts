/**
 * Send slots: at most `perEndpoint` attempts in flight per endpoint and `total` overall, and
 * the claimed deliveries waiting for a slot, per endpoint, in claim order.
 *
 * Why a waiting line at all: the worker claims ahead of what it can send (see CLAIM_AHEAD in
 * worker-options.ts), so a slot that frees up starts the next attempt from memory at once, instead of
 * waiting for a claim round trip that returns one or two rows. Claims then come in batches.
 */
export class SendSlots<T extends { endpointId: string }> {
  readonly #total: number;
  readonly #perEndpoint: number;
  readonly #waiting = new Map<string, T[]>();
  readonly #runningByEndpoint = new Map<string, number>();
  /** Running + waiting, per endpoint: what a claim must count as already taken. */
  readonly #heldByEndpoint = new Map<string, number>();
  #running = 0;
  #held = 0;

  constructor(limits: { total: number; perEndpoint: number }) {
    this.#total = limits.total;
    this.#perEndpoint = limits.perEndpoint;
  }

  /** Attempts in flight. */
  get running(): number {
    return this.#running;
  }

  /** Deliveries in flight or waiting. */
  get held(): number {
    return this.#held;
  }

  get heldByEndpoint(): ReadonlyMap<string, number> {
    return this.#heldByEndpoint;
  }

  /** Queues a claimed delivery behind the others of its endpoint. */
  add(item: T): void {
    const line = this.#waiting.get(item.endpointId);
    if (line) line.push(item);
    else this.#waiting.set(item.endpointId, [item]);
    this.#heldByEndpoint.set(item.endpointId, (this.#heldByEndpoint.get(item.endpointId) ?? 0) + 1);
    this.#held++;
  }

  /**
   * Removes and returns what may start now, counting it as running. Endpoints take turns, one
   * delivery each per round, so when the global limit binds no endpoint takes all of it.
   */
  takeStartable(): T[] {
    const started: T[] = [];
    let progress = true;
    while (progress && this.#running < this.#total) {
      progress = false;
      for (const [endpointId, line] of this.#waiting) {
        if (this.#running >= this.#total) break;
        const running = this.#runningByEndpoint.get(endpointId) ?? 0;
        if (running >= this.#perEndpoint) continue;
        const item = line.shift() as T;
        if (line.length === 0) this.#waiting.delete(endpointId);
        this.#runningByEndpoint.set(endpointId, running + 1);
        this.#running++;
        started.push(item);
        progress = true;
      }
    }
    return started;
  }

  /** Removes and returns what waits for `endpointId` (it was disabled: nothing more is sent to it). */
  dropWaiting(endpointId: string): T[] {
    const line = this.#waiting.get(endpointId) ?? [];
    this.#waiting.delete(endpointId);
    for (let i = 0; i < line.length; i++) {
      this.#held--;
      decrement(this.#heldByEndpoint, endpointId);
    }
    return line;
  }

  /** An attempt of `endpointId` finished: its slot is free. */
  finish(endpointId: string): void {
    this.#running--;
    this.#held--;
    decrement(this.#runningByEndpoint, endpointId);
    decrement(this.#heldByEndpoint, endpointId);
  }
}

function decrement(counts: Map<string, number>, key: string): void {
  const left = (counts.get(key) ?? 1) - 1;
  if (left > 0) counts.set(key, left);
  else counts.delete(key);
}
