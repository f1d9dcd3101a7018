/**
 * Which configuration (url, secrets) the worker may send an endpoint's deliveries with.
 *
 * A claimed row carries the endpoint's configuration as its claim read it, at the endpoint's
 * `revision` (bumped by every change of url, secrets or isActive). Rows wait in memory for a
 * slot, so by the time one is sent that copy may be outdated. The rule: no request starts with
 * a configuration read before a change the worker has heard of.
 *
 * - It hears of a change synchronously from the endpoint service of its own process, before the
 *   API answers (exact), and from other processes over ENDPOINT_CHANGED_CHANNEL (as late as the
 *   notification arrives).
 * - Once it has heard, nothing of the endpoint starts until the endpoint is read again (one
 *   query per change, not per send). A read that finds it deleted or disabled raises a floor
 *   that no older copy passes, so rows still coming from a claim in flight are not sent either.
 * - While it may miss notifications (its LISTEN connection is down or not up yet), copies read
 *   before the connection came up are not trusted: every send reads the endpoint first.
 *
 * What it heard is kept a lease past the change: a row claimed before then has no lease left to
 * be started with after that (the worker checks), so forgetting cannot let an old copy through.
 */
import type { StoredEndpointConfig } from '../queue/types.ts';

export interface EndpointConfig {
  endpointId: string;
  revision: number;
  url: string;
  secretEncrypted: string;
  previousSecretEncrypted: string | null;
  previousSecretExpiresAt: Date | null;
}

interface Entry {
  /** The freshest configuration read, and when (monotonic ms) the read behind it began. */
  known: { config: EndpointConfig; readAt: number } | undefined;
  /** Copies below this revision are outdated; Infinity: the endpoint was deleted. */
  floor: number;
  /** Changes heard of, and how many of them a finished read accounts for. */
  heard: number;
  settled: number;
  /** Monotonic ms of the last change heard of or floor raised. */
  changedAt: number;
  reading: Promise<boolean> | undefined;
}

export interface EndpointConfigsOptions {
  read: (endpointId: string) => Promise<StoredEndpointConfig | undefined>;
  /** How long what was heard of an endpoint is kept: the claim lease. */
  keepMs: number;
  now?: () => number;
}

export class EndpointConfigs {
  readonly #read: EndpointConfigsOptions['read'];
  readonly #keepMs: number;
  readonly #now: () => number;
  readonly #entries = new Map<string, Entry>();
  /** Copies read before this (monotonic ms) are not trusted; Infinity while notifications may be missed. */
  #trustedSince = Number.NEGATIVE_INFINITY;

  constructor(options: EndpointConfigsOptions) {
    this.#read = options.read;
    this.#keepMs = options.keepMs;
    this.#now = options.now ?? (() => performance.now());
  }

  /** False while notifications from other processes may be missed; true once they cannot be (again). */
  setNotified(notified: boolean): void {
    this.#trustedSince = notified ? this.#now() : Number.POSITIVE_INFINITY;
  }

  /** The endpoint changed (committed): what was read of it before may be outdated. */
  noteChanged(endpointId: string): void {
    const entry = this.#entry(endpointId);
    entry.heard++;
    entry.changedAt = this.#now();
  }

  /**
   * What to send a row with, given the copy it was claimed with (read at `readAt`): a
   * configuration; null when the endpoint is deleted or disabled; undefined when it must be
   * read first (refresh). `justRead`: the caller has just refreshed it, so what is known is as
   * fresh as it gets even while notifications may be missed. Allocates nothing when no change
   * was heard of.
   */
  configFor(copy: EndpointConfig, readAt: number, justRead = false): EndpointConfig | null | undefined {
    const entry = this.#entries.get(copy.endpointId);
    if (entry && entry.heard !== entry.settled) return undefined;
    const known = entry?.known;
    // At one revision, the later read wins: a secret's grace period can end without a change.
    const useCopy = !known || copy.revision > known.config.revision || (copy.revision === known.config.revision && readAt >= known.readAt);
    const config = useCopy ? copy : known.config;
    if (entry && config.revision < entry.floor) return null;
    if (!justRead && (useCopy ? readAt : known.readAt) < this.#trustedSince) return undefined;
    return config;
  }

  /** Still nothing heard of that `revision` does not account for: checked just before a request starts. */
  isCurrent(endpointId: string, revision: number): boolean {
    const entry = this.#entries.get(endpointId);
    return !entry || (entry.heard === entry.settled && revision >= entry.floor);
  }

  /**
   * Reads the endpoint until no change was heard of during the read. Concurrent callers share
   * one read. Resolves false when the endpoint is deleted or disabled; rejects when a read fails.
   */
  refresh(endpointId: string): Promise<boolean> {
    const entry = this.#entry(endpointId);
    entry.reading ??= this.#readUntilSettled(endpointId, entry).finally(() => {
      entry.reading = undefined;
    });
    return entry.reading;
  }

  /** Forgets endpoints nothing is held of whose last change is older than a lease. */
  prune(isHeld: (endpointId: string) => boolean): void {
    const now = this.#now();
    for (const [endpointId, entry] of this.#entries) {
      if (!entry.reading && !isHeld(endpointId) && now - entry.changedAt > this.#keepMs) this.#entries.delete(endpointId);
    }
  }

  async #readUntilSettled(endpointId: string, entry: Entry): Promise<boolean> {
    for (;;) {
      const heard = entry.heard;
      const readAt = this.#now();
      const stored = await this.#read(endpointId);
      this.#apply(endpointId, entry, stored, readAt);
      if (entry.heard === heard) {
        entry.settled = heard;
        return entry.known !== undefined;
      }
    }
  }

  #apply(endpointId: string, entry: Entry, stored: StoredEndpointConfig | undefined, readAt: number): void {
    // A disabled endpoint's rows are never claimed at its current revision, only after a re-enable bumps it.
    const floor = stored === undefined ? Number.POSITIVE_INFINITY : stored.isActive ? stored.revision : stored.revision + 1;
    if (floor > entry.floor) {
      entry.floor = floor;
      entry.changedAt = this.#now();
    }
    if (stored?.isActive && (!entry.known || entry.known.config.revision <= stored.revision)) {
      const { revision, url, secretEncrypted, previousSecretEncrypted, previousSecretExpiresAt } = stored;
      entry.known = { config: { endpointId, revision, url, secretEncrypted, previousSecretEncrypted, previousSecretExpiresAt }, readAt };
    } else if (entry.known && entry.known.config.revision < entry.floor) {
      entry.known = undefined;
    }
  }

  #entry(endpointId: string): Entry {
    let entry = this.#entries.get(endpointId);
    if (!entry) {
      entry = { known: undefined, floor: 0, heard: 0, settled: 0, changedAt: Number.NEGATIVE_INFINITY, reading: undefined };
      this.#entries.set(endpointId, entry);
    }
    return entry;
  }
}
