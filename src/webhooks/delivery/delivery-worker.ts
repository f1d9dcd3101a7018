/**
 * The delivery worker: a thin loop that sends the rows claim-pump.ts claims for it, each once, and
 * hands the results to result-writer.ts. The rules it applies live elsewhere (attempt-outcome.ts,
 * retry-policy.ts), as do its limits (worker-options.ts), request signing (prepare-request.ts)
 * and cleanup (retention-job.ts); the state lives in the database, so this loop can die at any point.
 *
 * Scheduling:
 * - the claim pump fills the send slots (send-slots.ts), which bound attempts in flight globally
 *   and per endpoint, so one slow receiver cannot hold everything;
 * - one wake timer aims at the earliest row due (a retry, an open coalescing delivery); rows
 *   hold no memory here. Beyond WAKE_HORIZON_MS it only comes back within the horizon to look
 *   again, and every sweep (which also finds rows of other processes, restarts, expired
 *   leases of crashed workers) re-aims it from the database.
 *
 * Sending waits safely:
 * - a row is sent with the endpoint configuration endpoint-configs.ts vouches for, not blindly
 *   with the copy its claim read: a change of url, secrets or isActive, or a delete, that this
 *   worker has heard of (`endpointChanged`) stops every request not yet started;
 * - a row starts only while its lease still covers a whole attempt: a row that waited too long
 *   is handed back rather than sent, since another worker may already have claimed it.
 */
import type { AppliedAttempt, AttemptRecord, ClaimedDelivery, InsertClaim, SignedParts } from '../queue/types.ts';
import { attemptRecordFor } from './attempt-record.ts';
import { ClaimPump } from './claim-pump.ts';
import { EndpointConfigs, type EndpointConfig } from './endpoint-configs.ts';
import { prepareRequest } from './prepare-request.ts';
import { ResultWriter } from './result-writer.ts';
import { RetentionJob } from './retention-job.ts';
import type { AttemptResult } from './sender.ts';
import { SendSlots } from './send-slots.ts';
import { WakeTimer } from './wake-timer.ts';
import { LEASE_END_MARGIN_MS, withDefaults, type DeliveryWorkerOptions, type ResolvedWorkerOptions } from './worker-options.ts';

export class DeliveryWorker {
  readonly #o: ResolvedWorkerOptions;

  #running = false;
  #stopping: Promise<void> | undefined;
  /** Set once stop() has handed back its claims: results arriving later belong to nobody. */
  #released = false;

  // Timers.
  #sweepTimer: NodeJS.Timeout | undefined;
  readonly #wake: WakeTimer;
  readonly #retention: RetentionJob;

  // Claimed rows: running (HTTP attempt in flight) or waiting for a slot.
  readonly #slots: SendSlots<ClaimedDelivery>;
  readonly #claims: ClaimPump;
  /**
   * Claimed rows whose result is not yet written (released on stop): id → claim token and when
   * (performance.now()) the claim began, which is no later than the database started the lease.
   */
  readonly #held = new Map<string, { claimToken: string; claimedAt: number }>();
  readonly #configs: EndpointConfigs;
  /** Held rows to hand back, released together at the next turn of the event loop (#handBack). */
  #handingBack: ClaimedDelivery[] = [];
  #idle: Array<() => void> = [];

  readonly #results: ResultWriter;
  /** Set when unwritten results held back an attempt or a claim: their write resumes both. */
  #pausedForResults = false;

  constructor(options: DeliveryWorkerOptions) {
    this.#o = withDefaults(options);
    this.#slots = new SendSlots({ total: this.#o.maxInFlight, perEndpoint: this.#o.maxInFlightPerEndpoint });
    this.#claims = new ClaimPump({
      ...this.#o,
      slots: this.#slots,
      resultsFull: () => this.#resultsFull(),
      waitingForWrite: () => this.#pausedForResults,
      claimed: (deliveries, claimedAt) => this.#launchAll(deliveries, claimedAt),
      scheduleWake: (delayMs) => this.#scheduleWake(delayMs),
    });
    this.#configs = new EndpointConfigs({ read: (id) => this.#o.queue.readEndpoint(id), keepMs: this.#o.leaseMs });
    this.#wake = new WakeTimer(this.#o.wakeHorizonMs, () => this.#sweep());
    this.#retention = new RetentionJob({
      queue: this.#o.queue,
      logger: this.#o.logger,
      retentionDays: this.#o.retentionDays,
      maxDeliveriesPerEndpoint: this.#o.maxDeliveriesPerEndpoint,
      firstRunDelayMs: this.#o.retentionFirstRunDelayMs,
      intervalMs: this.#o.retentionIntervalMs,
    });
    this.#results = new ResultWriter({
      completeAttempts: (records) => this.#o.queue.completeAttempts(records),
      logger: this.#o.logger,
      written: (records, applied) => this.#written(records, applied),
      retryRecorded: (delayMs) => this.#scheduleWake(delayMs),
      batchWritten: () => this.#resumeAfterWrite(),
    });
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
    this.#retention.start();
    this.#claims.start();
    this.#sweep();
  }

  /**
   * Hands over rows that were just dispatched (due now): they are claimed at once instead of
   * waiting for the sweep. Ignored when stopped; the rows are durable and a sweep finds them.
   */
  enqueue(deliveryIds: readonly string[]): void {
    this.#claims.enqueue(deliveryIds);
  }

  /** A claim for a dispatch to stamp on the rows it writes: see ClaimPump.reserveClaim. */
  reserveClaim(): InsertClaim | undefined {
    return this.#claims.reserveClaim();
  }

  /** Takes over rows a dispatch wrote already claimed by `reserveClaim` (`claim`). Stopped meanwhile: hands them back. */
  adopt(deliveries: readonly ClaimedDelivery[], claim: InsertClaim): void {
    if (deliveries.length === 0) return;
    if (!this.#running) {
      this.#o.queue
        .releaseDeliveries(deliveries)
        .catch((error: unknown) =>
          this.#o.logger.error({ err: error }, 'webhook worker: handing back deliveries claimed at dispatch failed; their lease runs out'),
        );
      return;
    }
    this.#launchAll(deliveries, this.#claims.reservedAt(claim));
  }

  /**
   * Rows a dispatch left unclaimed although it had a claim (their endpoints hold their share):
   * they wait for the backlog claim, which this worker's finishing attempts trigger.
   */
  noteBacklog(endpointIds: readonly string[]): void {
    this.#claims.noteBacklog(endpointIds);
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
      (error: unknown) =>
        this.#o.logger.warn({ err: error, endpointId }, 'webhook worker: reading a changed endpoint failed; its next send reads it'),
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
    const claiming = this.#claims.stop();
    clearInterval(this.#sweepTimer);
    this.#wake.clear();
    this.#retention.stop();
    this.#results.stop();
    await claiming;
    await this.#waitForIdle(this.#o.stopTimeoutMs);
    await this.#results.drain();
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
    this.#claims.sweep();
  }

  /** Unwritten results at their bound: no attempt starts and nothing is claimed until a write brings them under it. */
  #resultsFull(): boolean {
    if (this.#results.unwritten < this.#o.maxUnwrittenResults) return false;
    this.#pausedForResults = true;
    return true;
  }

  /** Results were written: what their bound held back goes on. */
  #resumeAfterWrite(): void {
    if (!this.#pausedForResults || this.#resultsFull()) return;
    this.#pausedForResults = false;
    this.#startReady();
    this.#claims.resultsWritten();
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
        this.#claims.attemptFinished(delivery.endpointId);
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
          this.#o.logger.error(
            { err: error, deliveryId: delivery.id },
            'webhook worker: reading the endpoint before sending failed; handing the delivery back',
          );
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
      const attempt = await this.#send(
        delivery,
        config,
        () => this.#configs.isCurrent(config.endpointId, config.revision) && this.#leaseCovers(claimedAt),
      );
      // Changed while the destination was checked: nothing was sent; look again.
      if (attempt.result.superseded) justRead = false;
      else sent = attempt;
    }
    if (this.#released) return;
    const { decision, pending } = attemptRecordFor(delivery, sent, { scheduleMs: this.#o.retryScheduleMs, random: this.#o.random });
    this.#o.metrics.attemptFinished(decision.outcome, sent.result.durationMs);
    this.#results.add(pending);
    if (decision.outcome === 'retry') this.#scheduleWake(decision.delayMs);
  }

  /** Whether a row claimed at `claimedAt` still has lease enough for a whole attempt started now. */
  #leaseCovers(claimedAt: number): boolean {
    return performance.now() <= claimedAt + this.#o.leaseMs - this.#o.timeoutMs - LEASE_END_MARGIN_MS;
  }

  /**
   * A held row that will not be sent by this worker: due now again, for any worker (a claim
   * cancels it if its endpoint is disabled). The rows handed back in one turn of the event loop
   * go in one statement: when an endpoint slows down, many held rows outlive their lease together.
   */
  #handBack(delivery: ClaimedDelivery): void {
    this.#held.delete(delivery.id);
    this.#handingBack.push(delivery);
    if (this.#handingBack.length === 1) setImmediate(() => this.#releaseHandedBack());
  }

  #releaseHandedBack(): void {
    const deliveries = this.#handingBack.splice(0);
    this.#o.queue
      .releaseDeliveries(deliveries)
      .then(() => this.#sweep())
      .catch((error: unknown) =>
        this.#o.logger.error(
          { err: error, deliveries: deliveries.length },
          'webhook worker: handing back deliveries failed; their lease runs out',
        ),
      );
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
    let prepared;
    try {
      prepared = prepareRequest(delivery, config, this.#o.keys, beforeStart);
    } catch (error) {
      this.#o.logger.error(
        { err: error, deliveryId: delivery.id, endpointId: delivery.endpointId },
        'webhook worker: cannot sign delivery',
      );
      const result = { ok: false, error: 'could not sign the request (endpoint secret unreadable)', durationMs: 0, startedAt: new Date() };
      return { result, signed: null };
    }
    return { result: await this.#o.sender.send(prepared.request), signed: prepared.signed };
  }

  /** Results written: their rows are no longer held; an endpoint they disabled stops at once. */
  #written(records: readonly AttemptRecord[], applied: readonly AppliedAttempt[]): void {
    this.#handleDisabled(applied);
    for (const record of records) this.#held.delete(record.deliveryId);
  }

  #handleDisabled(applied: readonly AppliedAttempt[]): void {
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
      .catch((error: unknown) =>
        this.#o.logger.error({ err: error, endpointId }, 'webhook worker: handing back deliveries of a disabled endpoint failed'),
      );
  }

  #scheduleWake(delayMs: number): void {
    if (this.#running) this.#wake.schedule(delayMs);
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
}
