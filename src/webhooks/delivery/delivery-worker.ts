/**
 * The delivery worker: a thin loop that claims due rows from the queue, sends each once, and
 * writes the results back. The rules it applies live elsewhere (attempt-outcome.ts,
 * retry-policy.ts); the state lives in the database, so this loop can die at any point.
 *
 * Scheduling:
 * - a dispatch in this process writes its rows already claimed for this worker when it has
 *   room (`reserveClaim`, then `adopt`); other rows due now are handed over and claimed at once
 *   (`enqueue`), or, for endpoints holding their share, left to the backlog claim;
 * - one wake timer aims at the earliest row due (a retry, an open coalescing delivery); rows
 *   hold no memory here. Beyond WAKE_HORIZON_MS it only comes back within the horizon to look
 *   again, and every sweep (which also finds rows of other processes, restarts, expired
 *   leases of crashed workers) re-aims it from the database;
 * - attempts in flight are bounded globally and per endpoint, so one slow receiver cannot
 *   hold everything; claims run CLAIM_AHEAD times those bounds ahead, the surplus waiting in
 *   memory (send-slots.ts) so a freed slot starts the next attempt without a round trip.
 *
 * Sending waits safely:
 * - a row is sent with the endpoint configuration endpoint-configs.ts vouches for, not blindly
 *   with the copy its claim read: a change of url, secrets or isActive, or a delete, that this
 *   worker has heard of (`endpointChanged`) stops every request not yet started;
 * - a row starts only while its lease still covers a whole attempt: a row that waited too long
 *   is handed back rather than sent, since another worker may already have claimed it.
 */
import { createHash, randomUUID } from 'node:crypto';
import { decideAttemptOutcome, describeFailure, type AttemptOutcome } from './attempt-outcome.ts';
import { EndpointConfigs, type EndpointConfig } from './endpoint-configs.ts';
import type { EndpointKeyCache } from './endpoint-keys.ts';
import { renderBody } from '../envelope.ts';
import { refusedForItsData, storableAttempt, unrecordableAttempt } from './receiver-values.ts';
import { RESPONSE_BODY_LIMIT_BYTES } from './retry-policy.ts';
import { PREVIOUS_SECRET_KEPT_AFTER_EXPIRY_MS } from '../secret-overlap.ts';
import { noDeliveryMetrics, type DeliveryMetrics } from './delivery-metrics.ts';
import type { DeliveryQueue } from '../queue/delivery-queue.ts';
import type { AttemptRecord, ClaimedDelivery, ClaimResult, InsertClaim, SignedParts } from '../queue/types.ts';
import type { AttemptResult, WebhookSender } from './sender.ts';
import { SendSlots } from './send-slots.ts';
import { signWithKeys } from '../signing.ts';

export const DEFAULT_MAX_IN_FLIGHT = 256;
export const DEFAULT_MAX_IN_FLIGHT_PER_ENDPOINT = 8;
/**
 * A row due sooner than this gets the wake timer aimed at it; a later one only gets a look
 * again half of this before it is due, since the database may have changed by then (claimed
 * elsewhere, cancelled). Either way a row is on time whatever WEBHOOK_SWEEP_INTERVAL_MS is,
 * which matters since a coalescing delivery can wait an hour.
 */
export const WAKE_HORIZON_MS = 60_000;
/**
 * Claims run ahead of sending: a worker holds up to this many times its in-flight limits
 * (globally and per endpoint), the surplus waiting in memory for a free slot (send-slots.ts).
 * Fewer, larger claims; a freed slot never waits for a claim round trip.
 */
export const CLAIM_AHEAD = 4;
/**
 * A claim outlives its attempts by this much before another worker may take the row. A row
 * waits for a slot at most (CLAIM_AHEAD - 1) attempt timeouts, then takes one itself, so the
 * default lease is CLAIM_AHEAD timeouts plus this margin.
 */
export const LEASE_MARGIN_MS = 30_000;
/**
 * A held row starts only if its lease, counted by this process's clock from before the claim,
 * still has an attempt timeout plus this left: timers firing late, the result write.
 */
export const LEASE_END_MARGIN_MS = 250;
export const RETENTION_INTERVAL_MS = 3_600_000;
export const RETENTION_FIRST_RUN_DELAY_MS = 60_000;
export const RETENTION_BATCH_SIZE = 1_000;
/** Results are written in batches of at most this many rows (one statement each). */
const COMPLETION_BATCH_SIZE = 500;
/** How long a finished attempt's result may wait for others to share its write. */
const COMPLETION_COALESCE_MS = 5;
/** After a failed result write, wait this long before trying again. */
const COMPLETION_RETRY_DELAY_MS = 1_000;
/**
 * Unwritten results held in memory at most (database slow or failing): at this many the worker
 * starts no attempt and claims nothing until writes bring them back under it. Attempts already
 * running still finish, so memory holds at most this plus the in-flight limit.
 */
export const MAX_UNWRITTEN_RESULTS = 2 * COMPLETION_BATCH_SIZE;
/** Shortest timer: keeps a row that is due but not claimable (locked elsewhere) from spinning the loop. */
const MIN_WAKE_DELAY_MS = 25;
/** Longest timer: a look every hour costs nothing, and setTimeout fires at once past about 24.8 days. */
const MAX_WAKE_DELAY_MS = 3_600_000;

/** A result waiting for its write, and what to write instead should the database refuse it. */
interface PendingResult {
  record: AttemptRecord;
  unrecordable: AttemptRecord;
}

export interface WorkerLogger {
  error(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  debug(obj: object, msg?: string): void;
}

export interface DeliveryWorkerOptions {
  queue: DeliveryQueue;
  sender: Pick<WebhookSender, 'send' | 'close'>;
  keys: EndpointKeyCache;
  logger: WorkerLogger;
  retryScheduleMs: readonly number[];
  /** Whole-attempt timeout; also bounds how long `stop()` waits for attempts in flight. */
  timeoutMs: number;
  sweepIntervalMs: number;
  /** Finished deliveries older than this are deleted; undefined: never. */
  retentionDays?: number;
  /** Finished deliveries of an endpoint beyond this many (newest kept) are deleted; undefined: no cap. */
  maxDeliveriesPerEndpoint?: number;
  metrics?: DeliveryMetrics;
  maxInFlight?: number;
  maxInFlightPerEndpoint?: number;
  leaseMs?: number;
  /** See WAKE_HORIZON_MS (tests shorten it). */
  wakeHorizonMs?: number;
  /** See MAX_UNWRITTEN_RESULTS (tests shorten it). */
  maxUnwrittenResults?: number;
  stopTimeoutMs?: number;
  retentionFirstRunDelayMs?: number;
  retentionIntervalMs?: number;
  random?: () => number;
}

export class DeliveryWorker {
  readonly #o: Required<Omit<DeliveryWorkerOptions, 'retentionDays' | 'maxDeliveriesPerEndpoint' | 'random'>> &
    Pick<DeliveryWorkerOptions, 'retentionDays' | 'maxDeliveriesPerEndpoint' | 'random'>;

  #running = false;
  #stopping: Promise<void> | undefined;
  /** Set once stop() has handed back its claims: results arriving later belong to nobody. */
  #released = false;

  // Timers.
  #sweepTimer: NodeJS.Timeout | undefined;
  #wakeTimer: NodeJS.Timeout | undefined;
  #wakeAt: number | undefined;
  #retentionTimer: NodeJS.Timeout | undefined;

  // Claim loop: one pump at a time; requests while it runs are folded into one more round.
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
  #fastIds: string[] = [];

  // Claimed rows: running (HTTP attempt in flight) or waiting for a slot.
  readonly #slots: SendSlots<ClaimedDelivery>;
  /**
   * Claimed rows whose result is not yet written (released on stop): id → claim token and when
   * (performance.now()) the claim began, which is no later than the database started the lease.
   */
  readonly #held = new Map<string, { claimToken: string; claimedAt: number }>();
  /** When each claim a dispatch stamps was reserved (reserveClaim → adopt). */
  readonly #reservedAt = new WeakMap<InsertClaim, number>();
  readonly #configs: EndpointConfigs;
  #idle: Array<() => void> = [];

  // Result writes.
  #results: PendingResult[] = [];
  #flushing: Promise<boolean> | undefined;
  /** Results taken out of #results by the write in progress: still unwritten. */
  #writing = 0;
  #flushRetryTimer: NodeJS.Timeout | undefined;
  /** Set when unwritten results held back an attempt or a claim: their write resumes both. */
  #pausedForResults = false;

  constructor(options: DeliveryWorkerOptions) {
    // `??` rather than spread defaults: an option passed as undefined means "the default".
    this.#o = {
      ...options,
      metrics: options.metrics ?? noDeliveryMetrics,
      maxInFlight: options.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT,
      maxInFlightPerEndpoint: options.maxInFlightPerEndpoint ?? DEFAULT_MAX_IN_FLIGHT_PER_ENDPOINT,
      leaseMs: options.leaseMs ?? CLAIM_AHEAD * options.timeoutMs + LEASE_MARGIN_MS,
      wakeHorizonMs: options.wakeHorizonMs ?? WAKE_HORIZON_MS,
      maxUnwrittenResults: options.maxUnwrittenResults ?? MAX_UNWRITTEN_RESULTS,
      stopTimeoutMs: options.stopTimeoutMs ?? options.timeoutMs,
      retentionFirstRunDelayMs: options.retentionFirstRunDelayMs ?? RETENTION_FIRST_RUN_DELAY_MS,
      retentionIntervalMs: options.retentionIntervalMs ?? RETENTION_INTERVAL_MS,
    };
    this.#slots = new SendSlots({ total: this.#o.maxInFlight, perEndpoint: this.#o.maxInFlightPerEndpoint });
    this.#configs = new EndpointConfigs({ read: (id) => this.#o.queue.readEndpoint(id), keepMs: this.#o.leaseMs });
  }

  get running(): boolean {
    return this.#running;
  }

  /** Attempts in flight right now. */
  get inFlight(): number {
    return this.#slots.running;
  }

  start(): void {
    if (this.#running || this.#stopping) return;
    this.#running = true;
    this.#sweepTimer = setInterval(() => this.#sweep(), this.#o.sweepIntervalMs);
    if (this.#o.retentionDays !== undefined || this.#o.maxDeliveriesPerEndpoint !== undefined) {
      this.#retentionTimer = setTimeout(() => void this.#runRetention(), this.#o.retentionFirstRunDelayMs);
    }
    this.#sweep();
  }

  /**
   * Hands over rows that were just dispatched (due now): they are claimed at once instead of
   * waiting for the sweep. Ignored when stopped; the rows are durable and a sweep finds them.
   */
  enqueue(deliveryIds: readonly string[]): void {
    if (!this.#running || deliveryIds.length === 0) return;
    this.#fastIds.push(...deliveryIds);
    this.#requestPump();
  }

  /**
   * A claim for a dispatch to stamp on the rows it writes (DeliveryQueue.insertForSubscribers),
   * so they need no claim round trip; undefined when this worker is stopped or has no room.
   * Endpoints already holding their claim-ahead share are excluded: their rows stay unclaimed,
   * for the backlog claim. Concurrent dispatches may each add a row beyond the share; those
   * only wait in memory longer, and the lease allows for a full waiting line.
   */
  reserveClaim(): InsertClaim | undefined {
    if (!this.#running || this.#claimCapacity() <= 0) return undefined;
    const perEndpointShare = CLAIM_AHEAD * this.#o.maxInFlightPerEndpoint;
    const saturated: string[] = [];
    for (const [endpointId, held] of this.#slots.heldByEndpoint) if (held >= perEndpointShare) saturated.push(endpointId);
    const claim = { token: randomUUID(), leaseMs: this.#o.leaseMs, saturated };
    this.#reservedAt.set(claim, performance.now());
    return claim;
  }

  /** Takes over rows a dispatch wrote already claimed by `reserveClaim` (`claim`). Stopped meanwhile: hands them back. */
  adopt(deliveries: readonly ClaimedDelivery[], claim: InsertClaim): void {
    if (deliveries.length === 0) return;
    if (!this.#running) {
      this.#o.queue
        .releaseDeliveries(deliveries)
        .catch((error: unknown) => this.#o.logger.error({ err: error }, 'webhook worker: handing back deliveries claimed at dispatch failed; their lease runs out'));
      return;
    }
    this.#launchAll(deliveries, this.#reservedAt.get(claim) ?? Number.NEGATIVE_INFINITY);
  }

  /**
   * Rows a dispatch left unclaimed although it had a claim (their endpoints hold their share):
   * they wait for the backlog claim, which this worker's finishing attempts trigger.
   */
  noteBacklog(endpointIds: readonly string[]): void {
    this.#backlog = true;
    // Their attempts may all have finished while the insert ran: then nothing else would ask.
    if (endpointIds.some((id) => this.#runningLow(id))) {
      this.#wantBacklogClaim = true;
      this.#requestPump();
    }
  }

  /**
   * A dispatch wrote a row due in `delayMs` that nobody may claim before then (an open
   * coalescing delivery): wake for it then. The row is durable; this is only the alarm clock.
   */
  expectDue(delayMs: number): void {
    this.#scheduleWake(delayMs);
  }

  /** Looks for due work now (e.g. on a NOTIFY from another process). */
  poke(): void {
    this.#sweep();
  }

  /**
   * An endpoint's url, secrets or isActive changed, or it was deleted (committed): from now on
   * no request of it starts with what this worker read before. Rows of a deleted or disabled
   * endpoint are handed back once a read confirms it (and a claim then cancels them).
   */
  endpointChanged(endpointId: string): void {
    this.#configs.noteChanged(endpointId);
    // Rows a claim still brings find the change unread and read it then.
    if (!this.#running || !this.#slots.heldByEndpoint.has(endpointId)) return;
    this.#configs.refresh(endpointId).then(
      (active) => {
        if (!active) this.#releaseWaiting(endpointId);
      },
      (error: unknown) => this.#o.logger.warn({ err: error, endpointId }, 'webhook worker: reading a changed endpoint failed; its next send reads it'),
    );
  }

  /**
   * Whether this worker hears of every endpoint change made by other processes (its LISTEN
   * connection is up). While not, it reads an endpoint before each send instead.
   */
  hearsEndpointChanges(hears: boolean): void {
    this.#configs.setNotified(hears);
  }

  /**
   * Graceful stop: claims nothing more, waits up to `stopTimeoutMs` for attempts in flight,
   * writes their results, and gives back (due now) whatever it still holds.
   */
  stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    this.#running = false;
    clearInterval(this.#sweepTimer);
    clearTimeout(this.#wakeTimer);
    clearTimeout(this.#retentionTimer);
    clearTimeout(this.#flushRetryTimer);
    await this.#pumping;
    await this.#waitForIdle(this.#o.stopTimeoutMs);
    while (this.#results.length > 0 || this.#flushing) {
      if (!(await this.#flush())) break;
    }
    const tokens = [...new Set([...this.#held.values()].map((held) => held.claimToken))];
    if (tokens.length > 0) {
      try {
        const released = await this.#o.queue.releaseClaims(tokens);
        this.#o.logger.info({ released, inFlight: this.#slots.running }, 'webhook worker released unfinished claims');
      } catch (error) {
        // The leases expire on their own; another worker takes the rows then.
        this.#o.logger.error({ err: error }, 'webhook worker could not release its claims; they come due when their lease expires');
      }
      this.#held.clear();
    }
    this.#released = true;
    await this.#o.sender.close();
  }

  #sweep(): void {
    this.#configs.prune((endpointId) => this.#slots.heldByEndpoint.has(endpointId));
    this.#wantGeneralClaim = true;
    this.#wantWakeRefresh = true;
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
        this.#launchClaimed(result, claimedAt);
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
        const result = await this.#o.queue.claimDueDeliveries(this.#claimOptions(capacity));
        this.#launchClaimed(result, claimedAt);
        this.#backlog = result.mayHaveMore;
      }
    }

    if (this.#wantWakeRefresh && this.#running) {
      this.#wantWakeRefresh = false;
      const delay = await this.#o.queue.nextDueInMs();
      // Due now but not claimed: capacity is full (a finished attempt or a result write claims) or another worker holds it.
      const claimsLater = this.#slots.running > 0 || this.#pausedForResults;
      if (delay !== undefined && !(delay === 0 && this.#backlog && claimsLater)) this.#scheduleWake(delay);
    }
  }

  /** How many more rows a claim may take: the claim-ahead window minus what is held; none while results wait at their bound. */
  #claimCapacity(): number {
    if (this.#resultsFull()) return 0;
    return CLAIM_AHEAD * this.#o.maxInFlight - this.#slots.held;
  }

  #resultsFull(): boolean {
    if (this.#results.length + this.#writing < this.#o.maxUnwrittenResults) return false;
    this.#pausedForResults = true;
    return true;
  }

  /** Results were written: what their bound held back goes on. */
  #resumeAfterWrite(): void {
    if (!this.#pausedForResults || this.#resultsFull()) return;
    this.#pausedForResults = false;
    this.#startReady();
    if (this.#backlog) {
      this.#wantBacklogClaim = true;
      this.#requestPump();
    }
  }

  /**
   * Time to claim more: the worker holds at most half its claim-ahead window, overall or for
   * the endpoint whose attempt just finished. The other half covers the claim's round trip.
   */
  #runningLow(endpointId: string): boolean {
    return (
      this.#slots.held <= (CLAIM_AHEAD * this.#o.maxInFlight) / 2 ||
      (this.#slots.heldByEndpoint.get(endpointId) ?? 0) <= (CLAIM_AHEAD * this.#o.maxInFlightPerEndpoint) / 2
    );
  }

  #claimOptions(capacity: number) {
    return {
      limit: capacity,
      leaseMs: this.#o.leaseMs,
      perEndpointLimit: CLAIM_AHEAD * this.#o.maxInFlightPerEndpoint,
      inFlightByEndpoint: this.#slots.heldByEndpoint,
    };
  }

  #launchClaimed(result: ClaimResult, claimedAt: number): void {
    if (result.cancelled > 0) {
      this.#o.logger.info({ cancelled: result.cancelled }, 'webhook worker cancelled due deliveries of disabled endpoints');
    }
    this.#launchAll(result.deliveries, claimedAt);
  }

  #launchAll(deliveries: readonly ClaimedDelivery[], claimedAt: number): void {
    for (const delivery of deliveries) {
      this.#held.set(delivery.id, { claimToken: delivery.claimToken, claimedAt });
      this.#slots.add(delivery);
    }
    this.#startReady();
  }

  /**
   * Starts every waiting delivery that has a free slot, unless unwritten results are at their
   * bound. Claimed while stopping: not sent; stop() releases it.
   */
  #startReady(): void {
    if (!this.#running || this.#resultsFull()) return;
    for (const delivery of this.#slots.takeStartable()) this.#launch(delivery);
  }

  #launch(delivery: ClaimedDelivery): void {
    void this.#attempt(delivery)
      .catch((error: unknown) => {
        // #attempt handles its own failures; this is a bug guard, the lease brings the row back.
        this.#o.logger.error({ err: error, deliveryId: delivery.id }, 'webhook worker: unexpected attempt failure');
      })
      .finally(() => {
        this.#slots.finish(delivery.endpointId);
        this.#startReady();
        if (this.#slots.running === 0) for (const resolve of this.#idle.splice(0)) resolve();
        if (this.#backlog && this.#runningLow(delivery.endpointId)) {
          this.#wantBacklogClaim = true;
          this.#requestPump();
        }
      });
  }

  async #attempt(delivery: ClaimedDelivery): Promise<void> {
    const claimedAt = this.#held.get(delivery.id)?.claimedAt ?? Number.NEGATIVE_INFINITY;
    let justRead = false;
    let sent: { result: AttemptResult; signed: SignedParts | null } | undefined;
    while (!sent) {
      const config = this.#configs.configFor(delivery, claimedAt, justRead);
      if (config === undefined) {
        try {
          await this.#configs.refresh(delivery.endpointId);
        } catch (error) {
          this.#o.logger.error({ err: error, deliveryId: delivery.id }, 'webhook worker: reading the endpoint before sending failed; handing the delivery back');
          this.#handBack(delivery);
          return;
        }
        // Stopping: not sent; stop() hands the row back.
        if (!this.#running) return;
        justRead = true;
        continue;
      }
      // Deleted or disabled; or waited so long that another worker may hold it by now.
      if (config === null || !this.#leaseCovers(claimedAt)) {
        this.#handBack(delivery);
        return;
      }
      const attempt = await this.#send(delivery, config, () => this.#configs.isCurrent(config.endpointId, config.revision) && this.#leaseCovers(claimedAt));
      // Changed while the destination was checked: nothing was sent; look again.
      if (attempt.result.superseded) justRead = false;
      else sent = attempt;
    }
    const { result, signed } = sent;
    if (this.#released) return;
    const decision: AttemptOutcome = decideAttemptOutcome({
      result,
      attemptsMade: delivery.attempts + 1,
      scheduleMs: this.#o.retryScheduleMs,
      random: this.#o.random,
    });
    this.#o.metrics.attemptFinished(decision.outcome, result.durationMs);
    const record = storableAttempt(
      {
        deliveryId: delivery.id,
        claimToken: delivery.claimToken,
        startedAt: result.startedAt,
        durationMs: result.durationMs,
        responseCode: result.statusCode ?? null,
        responseBody: result.responseBody ?? null,
        error: describeFailure(result),
        outcome: decision.outcome,
        delayMs: decision.outcome === 'retry' ? decision.delayMs : null,
        signed,
        responseDate: result.responseDate ?? null,
      },
      RESPONSE_BODY_LIMIT_BYTES,
    );
    // Decided now, while the attempt count is at hand: the failure it counts as, should the database refuse it.
    const failure = decideAttemptOutcome({
      result: { ok: false },
      attemptsMade: delivery.attempts + 1,
      scheduleMs: this.#o.retryScheduleMs,
      random: this.#o.random,
    });
    const unrecordable = unrecordableAttempt(record, { outcome: failure.outcome, delayMs: failure.outcome === 'retry' ? failure.delayMs : null });
    this.#results.push({ record, unrecordable });
    void this.#flush();
    if (decision.outcome === 'retry') this.#scheduleWake(decision.delayMs);
  }

  /** Whether a row claimed at `claimedAt` still has lease enough for a whole attempt started now. */
  #leaseCovers(claimedAt: number): boolean {
    return performance.now() <= claimedAt + this.#o.leaseMs - this.#o.timeoutMs - LEASE_END_MARGIN_MS;
  }

  /** A held row that will not be sent by this worker: due now again, for any worker (a claim cancels it if its endpoint is disabled). */
  #handBack(delivery: ClaimedDelivery): void {
    this.#held.delete(delivery.id);
    this.#o.queue
      .releaseDeliveries([delivery])
      .then(() => this.#sweep())
      .catch((error: unknown) => this.#o.logger.error({ err: error, deliveryId: delivery.id }, 'webhook worker: handing back a delivery failed; its lease runs out'));
  }

  /**
   * Signs and sends one attempt with `config`, and says what it signed. Never throws: a secret
   * that cannot be opened is a failed attempt with nothing signed. `beforeStart`: see WebhookRequest.
   */
  async #send(
    delivery: ClaimedDelivery,
    config: EndpointConfig,
    beforeStart: () => boolean,
  ): Promise<{ result: AttemptResult; signed: SignedParts | null }> {
    let request;
    let signed: SignedParts;
    try {
      // Encoded once: both HMACs, the recorded hash and the request all use these same bytes.
      const body = Buffer.from(renderBody(delivery.eventId, delivery.eventType, delivery.payload));
      const signing = this.#o.keys.signingKeysFor(config);
      const timestamp = Math.floor(Date.now() / 1000);
      const signature = signWithKeys(signing.keys, { webhookId: delivery.id, timestamp, body });
      signed = {
        timestamp,
        bodyBytes: body.length,
        bodySha256: createHash('sha256').update(body).digest('hex'),
        fingerprints: signing.fingerprints,
      };
      request = {
        endpointId: delivery.endpointId,
        url: config.url,
        body,
        headers: { ...signature, 'x-devcard-event': delivery.eventType, 'x-devcard-delivery': delivery.id },
        beforeStart,
      };
    } catch (error) {
      this.#o.logger.error({ err: error, deliveryId: delivery.id, endpointId: delivery.endpointId }, 'webhook worker: cannot sign delivery');
      const result = { ok: false, error: 'could not sign the request (endpoint secret unreadable)', durationMs: 0, startedAt: new Date() };
      return { result, signed: null };
    }
    return { result: await this.#o.sender.send(request), signed };
  }

  /**
   * Writes buffered results, one statement per batch. A result only applies while its claim
   * token matches, so writing it twice is harmless. A batch the database refuses is split down
   * to single rows, so one bad row cannot hold back the others (#writeBatch); what could not be
   * written at all (the database failing) is retried later. Resolves false when a write failed.
   */
  #flush(): Promise<boolean> {
    this.#flushing ??= this.#flushLoop().then((ok) => {
      this.#flushing = undefined;
      // A result that arrived as the loop was finishing starts the next one.
      if (ok && this.#results.length > 0) void this.#flush();
      return ok;
    });
    return this.#flushing;
  }

  async #flushLoop(): Promise<boolean> {
    // Results finishing within a few milliseconds share one statement (fewer, larger writes);
    // a full batch goes at once.
    if (this.#results.length < COMPLETION_BATCH_SIZE) {
      await new Promise<void>((resolve) => setTimeout(resolve, COMPLETION_COALESCE_MS));
    }
    while (this.#results.length > 0) {
      const batch = this.#results.splice(0, COMPLETION_BATCH_SIZE);
      this.#writing = batch.length;
      const unwritten = await this.#writeBatch(batch);
      this.#writing = 0;
      if (unwritten.length > 0) {
        this.#results.unshift(...unwritten);
        this.#o.logger.error({ results: unwritten.length }, 'webhook worker: writing attempt results failed; retrying');
        if (this.#running) {
          clearTimeout(this.#flushRetryTimer);
          this.#flushRetryTimer = setTimeout(() => void this.#flush(), COMPLETION_RETRY_DELAY_MS);
        }
        // Unwritten results stay held: stop() releases their rows, or their leases expire.
        return false;
      }
      this.#resumeAfterWrite();
    }
    return true;
  }

  /**
   * Writes `batch`; a failed write is tried again in halves, down to single rows. A single row
   * the database refuses for its data is written as an error attempt without the receiver's
   * values (receiver-values.ts): only the receiver can have made it unwritable. Any other
   * failure of a single row is the database failing, not the row: nothing more is tried this
   * round, and the unwritten results are returned to be retried, that row last, so that it
   * cannot hold back the others next time.
   */
  async #writeBatch(batch: PendingResult[]): Promise<PendingResult[]> {
    try {
      this.#applied(batch, await this.#o.queue.completeAttempts(batch.map((p) => p.record)));
      return [];
    } catch (error) {
      if (batch.length > 1) {
        const half = Math.ceil(batch.length / 2);
        const first = await this.#writeBatch(batch.slice(0, half));
        if (first.length === 0) return this.#writeBatch(batch.slice(half));
        // The row that failed is the last of `first`: keep it behind everything not yet tried.
        return [...first.slice(0, -1), ...batch.slice(half), ...first.slice(-1)];
      }
      const pending = batch[0] as PendingResult;
      if (refusedForItsData(error)) return this.#writeUnrecordable(pending, error);
      this.#o.logger.error({ err: error, deliveryId: pending.record.deliveryId }, 'webhook worker: writing an attempt result failed');
      return [pending];
    }
  }

  async #writeUnrecordable(pending: PendingResult, refusal: unknown): Promise<PendingResult[]> {
    const { deliveryId } = pending.record;
    try {
      this.#applied([pending], await this.#o.queue.completeAttempts([pending.unrecordable]));
      this.#o.logger.warn({ err: refusal, deliveryId }, 'webhook worker: attempt result refused by the database; recorded as a failed attempt');
      const { outcome, delayMs } = pending.unrecordable;
      if (outcome === 'retry' && delayMs !== null) this.#scheduleWake(delayMs);
      return [];
    } catch (error) {
      this.#o.logger.error({ err: error, deliveryId }, 'webhook worker: writing an attempt result failed');
      return [pending];
    }
  }

  #applied(batch: readonly PendingResult[], applied: Awaited<ReturnType<DeliveryQueue['completeAttempts']>>): void {
    this.#handleDisabled(applied);
    for (const { record } of batch) this.#held.delete(record.deliveryId);
  }

  #handleDisabled(applied: Awaited<ReturnType<DeliveryQueue['completeAttempts']>>): void {
    const reported = new Set<string>();
    for (const row of applied) {
      if (row.endpointDisabledReason === null || reported.has(row.endpointId)) continue;
      this.endpointChanged(row.endpointId);
      if (row.outcome === 'gone' || row.outcome === 'failed') {
        reported.add(row.endpointId);
        this.#o.logger.warn({ endpointId: row.endpointId, reason: row.endpointDisabledReason }, 'webhook endpoint disabled');
      }
    }
  }

  /**
   * Rows of a just-disabled (or deleted) endpoint that were claimed ahead but not started are
   * never sent: they are handed back, due now, and the next claim cancels them as it does every
   * due row of a disabled endpoint. If handing back fails, their lease runs out instead.
   */
  #releaseWaiting(endpointId: string): void {
    const dropped = this.#slots.dropWaiting(endpointId);
    if (dropped.length === 0) return;
    for (const delivery of dropped) this.#held.delete(delivery.id);
    this.#o.queue
      .releaseDeliveries(dropped)
      .then(() => this.#sweep())
      .catch((error: unknown) => this.#o.logger.error({ err: error, endpointId }, 'webhook worker: handing back deliveries of a disabled endpoint failed'));
  }

  #scheduleWake(delayMs: number): void {
    if (!this.#running) return;
    const horizon = this.#o.wakeHorizonMs;
    // A far row: wake half a horizon before it; the refresh that follows every wake then aims at the row itself.
    const wakeIn = delayMs > horizon ? delayMs - horizon / 2 : delayMs;
    const at = Date.now() + Math.min(MAX_WAKE_DELAY_MS, Math.max(MIN_WAKE_DELAY_MS, wakeIn));
    if (this.#wakeAt !== undefined && this.#wakeAt <= at) return;
    clearTimeout(this.#wakeTimer);
    this.#wakeAt = at;
    this.#wakeTimer = setTimeout(() => {
      this.#wakeTimer = undefined;
      this.#wakeAt = undefined;
      this.#sweep();
    }, at - Date.now());
  }

  #waitForIdle(timeoutMs: number): Promise<void> {
    if (this.#slots.running === 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, timeoutMs);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.#idle.push(done);
    });
  }

  /**
   * Deletes finished deliveries past the retention period, then those past the per-endpoint
   * cap, and forgets previous secrets kept past PREVIOUS_SECRET_KEPT_AFTER_EXPIRY_MS.
   */
  async #runRetention(): Promise<void> {
    const { queue, retentionDays, maxDeliveriesPerEndpoint: cap } = this.#o;
    if (!this.#running) return;
    const cutoff = retentionDays === undefined ? undefined : new Date(Date.now() - retentionDays * 86_400_000);
    try {
      const deleted = cutoff ? await this.#pruneInBatches(() => queue.pruneDeliveries(cutoff, RETENTION_BATCH_SIZE)) : 0;
      const overCap = cap === undefined ? 0 : await this.#pruneInBatches(() => queue.pruneDeliveriesOverCap(cap, RETENTION_BATCH_SIZE));
      if (deleted > 0) this.#o.logger.info({ deleted, olderThan: cutoff?.toISOString() }, 'webhook deliveries pruned');
      if (overCap > 0) this.#o.logger.info({ deleted: overCap, maxPerEndpoint: cap }, 'webhook deliveries over the per-endpoint cap pruned');
      const forgotten = await queue.forgetExpiredPreviousSecrets(new Date(Date.now() - PREVIOUS_SECRET_KEPT_AFTER_EXPIRY_MS));
      if (forgotten > 0) this.#o.logger.info({ endpoints: forgotten }, 'expired previous webhook secrets forgotten');
    } catch (error) {
      this.#o.logger.error({ err: error }, 'webhook retention: pruning failed; retrying at the next run');
    } finally {
      if (this.#running) this.#retentionTimer = setTimeout(() => void this.#runRetention(), this.#o.retentionIntervalMs);
    }
  }

  async #pruneInBatches(pruneBatch: () => Promise<number>): Promise<number> {
    let deleted = 0;
    for (;;) {
      const n = await pruneBatch();
      deleted += n;
      if (n < RETENTION_BATCH_SIZE || !this.#running) return deleted;
    }
  }
}
