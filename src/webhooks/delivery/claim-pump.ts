/**
 * The claim pump: how the delivery worker fills its send slots (send-slots.ts), kept apart from
 * the loop that sends, as graphile/worker keeps its prefetch buffer (localQueue.ts) apart from
 * its workers. Rows reach the worker already claimed in one of three ways:
 * - a dispatch in this process writes its rows claimed for this worker when it has room
 *   (`reserveClaim`; the worker then adopts them); endpoints holding their share, and paced
 *   endpoints, are left out, their rows wait for the backlog claim (`noteBacklog`);
 * - other rows a dispatch hands over due now are claimed by id at once (`enqueue`);
 * - everything else due (retries, rows of other processes, expired leases of crashed workers)
 *   is claimed by a sweep, or by the backlog claim once what the worker holds runs low;
 *   a paced endpoint's rows only as its turns come (queue/pacing.ts), the wake timer aimed at the next.
 * Claims run CLAIM_AHEAD times the in-flight bounds ahead, the surplus waiting in memory so a
 * freed slot starts the next attempt without a round trip. A dispatch may go further for an
 * endpoint whose recent pace starts more within HOLD_AHEAD_MS (endpoint-pace.ts): in a burst the
 * views outrun the sends, and rows this worker will send within seconds then cost no backlog
 * claim (its row lock and update, and its round trip).
 */
import { randomUUID } from 'node:crypto';
import type { ClaimedDelivery, ClaimOptions, ClaimResult, InsertClaim } from '../queue/types.ts';
import { EndpointPace } from './endpoint-pace.ts';
import type { SendSlots } from './send-slots.ts';
import { CLAIM_AHEAD, MAX_HELD_AT_DISPATCH, type ResolvedWorkerOptions } from './worker-options.ts';

/**
 * A finished attempt of an endpoint still holding more than half its share claims again only
 * this long after the last backlog claim began. Rows of endpoints the worker holds none of
 * (retries, other processes' dispatches) may be waiting, so such attempts must claim now and
 * then; but claiming after each of them took only the few rows freed since the claim before:
 * about 19 rows per claim in the throughput bench, against 54 with this spacing.
 */
export const BACKLOG_CLAIM_SPACING_MS = 100;

export type ClaimPumpOptions = Pick<ResolvedWorkerOptions, 'queue' | 'logger' | 'leaseMs' | 'timeoutMs' | 'holdAheadMs' | 'maxInFlight'> & {
  /** The worker's slots: what it holds counts against every claim. The pump only reads them. */
  slots: Pick<SendSlots<ClaimedDelivery>, 'held' | 'heldByEndpoint' | 'heldWithinShare' | 'share' | 'running'>;
  /** Whether unwritten results are at their bound: nothing is claimed then. */
  resultsFull: () => boolean;
  /** Whether the results bound held something back, so that the next result write claims again. */
  waitingForWrite: () => boolean;
  /** Rows claimed for the worker; `claimedAt` (performance.now()) is no later than their lease began. */
  claimed: (deliveries: readonly ClaimedDelivery[], claimedAt: number) => void;
  /** A row comes due in `delayMs` that no claim took now. */
  scheduleWake: (delayMs: number) => void;
};

export class ClaimPump {
  readonly #o: ClaimPumpOptions;
  #running = false;

  // One pump at a time; requests while it runs are folded into one more round.
  #pumping: Promise<void> | undefined;
  #pumpAgain = false;
  #wantGeneralClaim = false;
  #wantBacklogClaim = false;
  #wantWakeRefresh = false;
  /**
   * Due rows may exist that the last claim left behind (capacity): a finished attempt claims
   * again once what this worker holds runs low (see #runningLow), so a backlog is claimed in
   * batches rather than one scan per finished attempt.
   */
  #backlog = false;
  /** Counts noteBacklog calls: one made while a claim was out is not undone by that claim's answer. */
  #backlogNotes = 0;
  /** When the last claim of due rows began (performance.now()). */
  #lastClaimAt = Number.NEGATIVE_INFINITY;
  #fastIds: string[] = [];
  /** When each claim a dispatch stamps was reserved (reserveClaim → reservedAt). */
  readonly #reservedAt = new WeakMap<InsertClaim, number>();
  readonly #pace: EndpointPace;
  readonly #holdAheadMs: number;

  constructor(options: ClaimPumpOptions & { pace?: EndpointPace }) {
    this.#o = options;
    this.#pace = options.pace ?? new EndpointPace();
    this.#holdAheadMs = Math.max(0, Math.min(options.holdAheadMs, (options.leaseMs - options.timeoutMs) / 4));
  }

  start(): void {
    this.#running = true;
  }

  /** Claims nothing more; resolves once the claim in progress, if any, has handed over its rows. */
  stop(): Promise<void> {
    this.#running = false;
    return this.#pumping ?? Promise.resolve();
  }

  /** Claims whatever is due, and re-aims the wake timer from the database. */
  sweep(): void {
    this.#pace.prune();
    this.#wantGeneralClaim = true;
    this.#wantWakeRefresh = true;
    this.#requestPump();
  }

  /** Claims rows just dispatched (due now) by id. Ignored when stopped; the rows are durable and a sweep finds them. */
  enqueue(deliveryIds: readonly string[]): void {
    if (!this.#running || deliveryIds.length === 0) return;
    this.#fastIds.push(...deliveryIds);
    this.#requestPump();
  }

  /**
   * A claim for a dispatch to stamp on the rows it writes (DeliveryQueue.insertForSubscribers),
   * so they need no claim round trip; undefined when stopped or there is no room.
   * Endpoints already holding what they may hold at dispatch (#dispatchShare) are excluded:
   * their rows stay unclaimed, for the backlog claim. Concurrent dispatches may each add a row
   * beyond it; those only wait in memory longer, and the lease allows for a full waiting line.
   */
  reserveClaim(): InsertClaim | undefined {
    if (!this.#running || this.#claimCapacity() <= 0 || this.#o.slots.held >= MAX_HELD_AT_DISPATCH) return undefined;
    const saturated: string[] = [];
    for (const [endpointId, held] of this.#o.slots.heldByEndpoint) if (held >= this.#dispatchShare(endpointId)) saturated.push(endpointId);
    const claim = { token: randomUUID(), leaseMs: this.#o.leaseMs, saturated };
    this.#reservedAt.set(claim, performance.now());
    return claim;
  }

  /** When `claim` was reserved: the lease of the rows written with it began no earlier. */
  reservedAt(claim: InsertClaim): number {
    return this.#reservedAt.get(claim) ?? Number.NEGATIVE_INFINITY;
  }

  /** Rows a dispatch left unclaimed although it had a claim (their endpoints hold their share). */
  noteBacklog(endpointIds: readonly string[]): void {
    this.#backlog = true;
    this.#backlogNotes += 1;
    // Their attempts may all have finished while the insert ran: then nothing else would ask.
    if (endpointIds.some((id) => this.#runningLow(id))) this.#claimBacklog();
  }

  /** An attempt of `endpointId` finished: claims the backlog if what is held runs low. */
  attemptFinished(endpointId: string): void {
    this.#pace.finished(endpointId);
    if (this.#backlog && this.#runningLow(endpointId)) this.#claimBacklog();
  }

  /** The results bound lifted: claims the backlog it held back. */
  resultsWritten(): void {
    if (this.#backlog) this.#claimBacklog();
  }

  #claimBacklog(): void {
    this.#wantBacklogClaim = true;
    this.#requestPump();
  }

  #requestPump(): void {
    if (!this.#running) return;
    if (this.#pumping) {
      this.#pumpAgain = true;
      return;
    }
    this.#pumping = this.#pump().finally(() => {
      this.#pumping = undefined;
    });
  }

  async #pump(): Promise<void> {
    // Let the current tick's dispatches and finished attempts join this round.
    await new Promise<void>((resolve) => setImmediate(resolve));
    do {
      this.#pumpAgain = false;
      try {
        await this.#pumpOnce();
      } catch (error) {
        // The rows stay in the database; the next sweep (or finished attempt) tries again.
        this.#o.logger.error({ err: error }, 'webhook worker: claiming deliveries failed; retrying on the next sweep');
        break;
      }
    } while (this.#pumpAgain && this.#running);
  }

  async #pumpOnce(): Promise<void> {
    if (this.#fastIds.length > 0) {
      const ids = this.#fastIds;
      this.#fastIds = [];
      const capacity = this.#claimCapacity();
      if (capacity <= 0) {
        this.#backlog = true;
      } else {
        const claimedAt = performance.now();
        const result = await this.#o.queue.claimDeliveries(ids, this.#claimOptions(capacity));
        this.#handOver(result, claimedAt);
        if (result.deliveries.length < ids.length) this.#backlog = true;
      }
    }

    // One claim per round: when it leaves due rows behind (capacity), finished attempts ask for
    // another round once the held rows run low, so claims follow the rhythm at which slots free up.
    if ((this.#wantGeneralClaim || this.#wantBacklogClaim) && this.#running) {
      this.#wantGeneralClaim = false;
      this.#wantBacklogClaim = false;
      const capacity = this.#claimCapacity();
      if (capacity <= 0) {
        this.#backlog = true;
      } else {
        const claimedAt = performance.now();
        this.#lastClaimAt = claimedAt;
        const notes = this.#backlogNotes;
        const result = await this.#o.queue.claimDueDeliveries(this.#claimOptions(capacity));
        this.#handOver(result, claimedAt);
        // Rows a dispatch left meanwhile were not seen by this claim: they are still backlog.
        this.#backlog = result.mayHaveMore || this.#backlogNotes !== notes;
      }
    }

    if (this.#wantWakeRefresh && this.#running) {
      this.#wantWakeRefresh = false;
      const delay = await this.#o.queue.nextDueInMs();
      // Due now but not claimed: capacity is full (a finished attempt or a result write claims) or another worker holds it.
      const claimsLater = this.#o.slots.running > 0 || this.#o.waitingForWrite();
      if (delay !== undefined && !(delay === 0 && this.#backlog && claimsLater)) this.#o.scheduleWake(delay);
    }
  }

  /** How many more rows a claim may take: the claim-ahead window minus what is held within shares; none while results wait at their bound. */
  #claimCapacity(): number {
    if (this.#o.resultsFull()) return 0;
    return this.#window - this.#o.slots.heldWithinShare;
  }

  /**
   * Rows of `endpointId` a dispatch may write claimed for this worker: its claim-ahead share, or
   * what its recent pace starts within the hold-ahead time if that is more.
   */
  #dispatchShare(endpointId: string): number {
    return Math.max(this.#endpointShare, Math.floor((this.#pace.perSecond(endpointId) * this.#holdAheadMs) / 1000));
  }

  /** Rows the worker may hold in all: CLAIM_AHEAD times its in-flight bound. */
  get #window(): number {
    return CLAIM_AHEAD * this.#o.maxInFlight;
  }

  /** Rows it may hold of one endpoint (the slots' share: CLAIM_AHEAD times the per-endpoint bound). */
  get #endpointShare(): number {
    return this.#o.slots.share;
  }

  /**
   * Time to claim more: the endpoint whose attempt just finished holds at most half its share
   * (the other half covers the claim's round trip), or the worker holds at most half its
   * window overall and BACKLOG_CLAIM_SPACING_MS have passed since the last claim.
   */
  #runningLow(endpointId: string): boolean {
    if ((this.#o.slots.heldByEndpoint.get(endpointId) ?? 0) <= this.#endpointShare / 2) return true;
    return this.#o.slots.heldWithinShare <= this.#window / 2 && performance.now() - this.#lastClaimAt >= BACKLOG_CLAIM_SPACING_MS;
  }

  #claimOptions(capacity: number): ClaimOptions {
    return {
      limit: capacity,
      leaseMs: this.#o.leaseMs,
      perEndpointLimit: this.#endpointShare,
      inFlightByEndpoint: this.#o.slots.heldByEndpoint,
    };
  }

  #handOver(result: ClaimResult, claimedAt: number): void {
    // Rows of a paced endpoint wait in the queue, unclaimed, for its next turn: come back then.
    if (result.pacedWaitMs !== undefined) this.#o.scheduleWake(result.pacedWaitMs);
    if (result.cancelled > 0) {
      this.#o.logger.info({ cancelled: result.cancelled }, 'webhook worker cancelled due deliveries of disabled endpoints');
    }
    this.#o.claimed(result.deliveries, claimedAt);
  }
}
