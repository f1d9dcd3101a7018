/**
 * The retention job: on its own timer, with a retention period, keeps the day partitions
 * PARTITION_DAYS_AHEAD ahead and drops those past the period (queue/partitions.ts), deleting
 * what lies outside them row by row; then deletes finished deliveries past the per-endpoint cap,
 * and forgets previous secrets kept past PREVIOUS_SECRET_KEPT_AFTER_EXPIRY_MS.
 */
import type { DeliveryQueue } from '../queue/delivery-queue.ts';
import { PREVIOUS_SECRET_KEPT_AFTER_EXPIRY_MS } from '../secret-overlap.ts';
import type { WorkerLogger } from './worker-logger.ts';

export const RETENTION_INTERVAL_MS = 3_600_000;
export const RETENTION_FIRST_RUN_DELAY_MS = 60_000;
export const RETENTION_BATCH_SIZE = 1_000;
/** Far enough that a week without a run (every worker down) still finds tomorrow's partitions. */
export const PARTITION_DAYS_AHEAD = 7;
const DAY_MS = 86_400_000;

export interface RetentionJobOptions {
  queue: Pick<
    DeliveryQueue,
    'pruneDeliveries' | 'pruneDeliveriesOverCap' | 'forgetExpiredPreviousSecrets' | 'createDayPartitions' | 'dropDayPartitions'
  >;
  logger: WorkerLogger;
  /** Finished deliveries older than this are deleted; undefined: never. */
  retentionDays: number | undefined;
  /** Finished deliveries of an endpoint beyond this many (newest kept) are deleted; undefined: no cap. */
  maxDeliveriesPerEndpoint: number | undefined;
  firstRunDelayMs: number;
  intervalMs: number;
}

export class RetentionJob {
  readonly #o: RetentionJobOptions;
  #running = false;
  #timer: NodeJS.Timeout | undefined;

  constructor(options: RetentionJobOptions) {
    this.#o = options;
  }

  /** Runs first after `firstRunDelayMs`, then every `intervalMs`; nothing to do when neither limit is set. */
  start(): void {
    if (this.#o.retentionDays === undefined && this.#o.maxDeliveriesPerEndpoint === undefined) return;
    this.#running = true;
    this.#timer = setTimeout(() => void this.#run(), this.#o.firstRunDelayMs);
  }

  /** No further run, and a run in progress stops after its current batch. */
  stop(): void {
    this.#running = false;
    clearTimeout(this.#timer);
  }

  async #run(): Promise<void> {
    const { queue, logger, retentionDays, maxDeliveriesPerEndpoint: cap } = this.#o;
    if (!this.#running) return;
    const cutoff = retentionDays === undefined ? undefined : new Date(Date.now() - retentionDays * DAY_MS);
    try {
      if (cutoff) await this.#rollPartitions(cutoff);
      const deleted = cutoff ? await this.#pruneInBatches(() => queue.pruneDeliveries(cutoff, RETENTION_BATCH_SIZE)) : 0;
      const overCap = cap === undefined ? 0 : await this.#pruneInBatches(() => queue.pruneDeliveriesOverCap(cap, RETENTION_BATCH_SIZE));
      if (deleted > 0) logger.info({ deleted, olderThan: cutoff?.toISOString() }, 'webhook deliveries pruned');
      if (overCap > 0) logger.info({ deleted: overCap, maxPerEndpoint: cap }, 'webhook deliveries over the per-endpoint cap pruned');
      const forgotten = await queue.forgetExpiredPreviousSecrets(new Date(Date.now() - PREVIOUS_SECRET_KEPT_AFTER_EXPIRY_MS));
      if (forgotten > 0) logger.info({ endpoints: forgotten }, 'expired previous webhook secrets forgotten');
    } catch (error) {
      logger.error({ err: error }, 'webhook retention: pruning failed; retrying at the next run');
    } finally {
      if (this.#running) this.#timer = setTimeout(() => void this.#run(), this.#o.intervalMs);
    }
  }

  /** Several workers may run this at once: a partition another one created or dropped first is not an error. */
  async #rollPartitions(cutoff: Date): Promise<void> {
    const { queue, logger } = this.#o;
    try {
      const created = await queue.createDayPartitions(new Date(), PARTITION_DAYS_AHEAD);
      if (created.length > 0) logger.info({ partitions: created }, 'webhook partitions created');
      const dropped = await queue.dropDayPartitions(cutoff);
      if (dropped.length > 0) logger.info({ partitions: dropped, olderThan: cutoff.toISOString() }, 'webhook partitions dropped');
    } catch (error) {
      logger.warn({ err: error }, 'webhook retention: partition upkeep failed; rows go to the default partitions until the next run');
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
