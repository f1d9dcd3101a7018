/**
 * Send slots: at most `perEndpoint` attempts in flight per endpoint and `total` overall, and
 * the claimed deliveries waiting for a slot, per endpoint, in claim order.
 *
 * Why a waiting line at all: the worker claims ahead of what it can send (see CLAIM_AHEAD in
 * worker-options.ts), so a slot that frees up starts the next attempt from memory at once, instead of
 * waiting for a claim round trip that returns one or two rows. Claims then come in batches.
 */
import { CLAIM_AHEAD } from './worker-options.ts';

export class SendSlots<T extends { endpointId: string }> {
  readonly #total: number;
  readonly #perEndpoint: number;
  readonly #waiting = new Map<string, T[]>();
  readonly #runningByEndpoint = new Map<string, number>();
  /** Running + waiting, per endpoint: what a claim must count as already taken. */
  readonly #heldByEndpoint = new Map<string, number>();
  #running = 0;
  #held = 0;
  /** Σ min(held of an endpoint, share), kept as rows come and go: read on every finished attempt. */
  #heldWithinShare = 0;
  /** Rows of one endpoint a claim may hold: CLAIM_AHEAD times its in-flight bound. */
  readonly share: number;

  constructor(limits: { total: number; perEndpoint: number }) {
    this.#total = limits.total;
    this.#perEndpoint = limits.perEndpoint;
    this.share = CLAIM_AHEAD * limits.perEndpoint;
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

  /**
   * What is held, counting of each endpoint at most its share: rows a dispatch held past it for
   * that endpoint's own pace (claim-pump.ts) must not keep other endpoints' rows from a claim.
   */
  get heldWithinShare(): number {
    return this.#heldWithinShare;
  }

  /** Queues a claimed delivery behind the others of its endpoint. */
  add(item: T): void {
    const line = this.#waiting.get(item.endpointId);
    if (line) line.push(item);
    else this.#waiting.set(item.endpointId, [item]);
    this.#countHeld(item.endpointId, 1);
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
    for (let i = 0; i < line.length; i++) this.#countHeld(endpointId, -1);
    return line;
  }

  /** An attempt of `endpointId` finished: its slot is free. */
  finish(endpointId: string): void {
    this.#running--;
    decrement(this.#runningByEndpoint, endpointId);
    this.#countHeld(endpointId, -1);
  }

  /** One row of `endpointId` more (+1) or less (−1) held. */
  #countHeld(endpointId: string, change: 1 | -1): void {
    const before = this.#heldByEndpoint.get(endpointId) ?? 0;
    const after = before + change;
    if (after > 0) this.#heldByEndpoint.set(endpointId, after);
    else this.#heldByEndpoint.delete(endpointId);
    this.#held += change;
    if (Math.max(before, after) <= this.share) this.#heldWithinShare += change;
  }
}

function decrement(counts: Map<string, number>, key: string): void {
  const left = (counts.get(key) ?? 1) - 1;
  if (left > 0) counts.set(key, left);
  else counts.delete(key);
}
