/**
 * Writes attempt results back to the queue, batched, and keeps those it could not write yet.
 * A result only applies while its claim token matches, so writing one twice is harmless.
 */
import type { AppliedAttempt, AttemptRecord } from '../queue/types.ts';
import { refusedForItsData } from './receiver-values.ts';
import type { WorkerLogger } from './worker-logger.ts';

/** Results are written in batches of at most this many rows (one statement each). */
export const COMPLETION_BATCH_SIZE = 500;
/**
 * How long a result waits for others to share its write, before every batch that is not full:
 * a write's cost is mostly per statement (its start and its commit), so a busy worker writes
 * fewer, larger batches (bench/README.md, "Result batches").
 */
export const COMPLETION_COALESCE_MS = 20;
/** After a failed result write, wait this long before trying again. */
const COMPLETION_RETRY_DELAY_MS = 1_000;

/** A result waiting for its write, and what to write instead should the database refuse it. */
export interface PendingResult {
  record: AttemptRecord;
  unrecordable: AttemptRecord;
}

export interface ResultWriterOptions {
  completeAttempts: (records: readonly AttemptRecord[]) => Promise<AppliedAttempt[]>;
  logger: WorkerLogger;
  /** `records` were written (`applied`: what the database did with them): their rows are no longer held. */
  written: (records: readonly AttemptRecord[], applied: readonly AppliedAttempt[]) => void;
  /** A refused result was recorded as a failed attempt, due again in `delayMs`. */
  retryRecorded: (delayMs: number) => void;
  /** A batch was written: what waited for room among unwritten results may go on. */
  batchWritten: () => void;
}

export class ResultWriter {
  readonly #o: ResultWriterOptions;
  #results: PendingResult[] = [];
  #flushing: Promise<boolean> | undefined;
  /** Results taken out of #results by the write in progress: still unwritten. */
  #writing = 0;
  #retryTimer: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(options: ResultWriterOptions) {
    this.#o = options;
  }

  /** Results not yet written, including those being written now. */
  get unwritten(): number {
    return this.#results.length + this.#writing;
  }

  add(result: PendingResult): void {
    this.#results.push(result);
    void this.flush();
  }

  /** No retry timer from now on; what remains is written by drain(). */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#retryTimer);
  }

  /** Writes until nothing is left or a write fails. */
  async drain(): Promise<void> {
    while (this.#results.length > 0 || this.#flushing) {
      if (!(await this.flush())) break;
    }
  }

  /**
   * Writes buffered results, one statement per batch. A batch the database refuses is split down
   * to single rows, so one bad row cannot hold back the others (#writeBatch); what could not be
   * written at all (the database failing) is retried later. Resolves false when a write failed.
   */
  flush(): Promise<boolean> {
    this.#flushing ??= this.#flushLoop().then((ok) => {
      this.#flushing = undefined;
      // A result that arrived as the loop was finishing starts the next one.
      if (ok && this.#results.length > 0) void this.flush();
      return ok;
    });
    return this.#flushing;
  }

  async #flushLoop(): Promise<boolean> {
    while (this.#results.length > 0) {
      // Before each batch, not only the first: results that finished while a write was running
      // would otherwise go out a few at a time, back to back.
      if (this.#results.length < COMPLETION_BATCH_SIZE) {
        await new Promise<void>((resolve) => setTimeout(resolve, COMPLETION_COALESCE_MS));
      }
      const batch = this.#results.splice(0, COMPLETION_BATCH_SIZE);
      this.#writing = batch.length;
      const unwritten = await this.#writeBatch(batch);
      this.#writing = 0;
      if (unwritten.length > 0) {
        this.#results.unshift(...unwritten);
        this.#o.logger.error({ results: unwritten.length }, 'webhook worker: writing attempt results failed; retrying');
        if (!this.#stopped) {
          clearTimeout(this.#retryTimer);
          this.#retryTimer = setTimeout(() => void this.flush(), COMPLETION_RETRY_DELAY_MS);
        }
        // Unwritten results stay held: stop() releases their rows, or their leases expire.
        return false;
      }
      this.#o.batchWritten();
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
      const records = batch.map((p) => p.record);
      this.#o.written(records, await this.#o.completeAttempts(records));
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
      this.#o.written([pending.record], await this.#o.completeAttempts([pending.unrecordable]));
      this.#o.logger.warn(
        { err: refusal, deliveryId },
        'webhook worker: attempt result refused by the database; recorded as a failed attempt',
      );
      const { outcome, delayMs } = pending.unrecordable;
      if (outcome === 'retry' && delayMs !== null) this.#o.retryRecorded(delayMs);
      return [];
    } catch (error) {
      this.#o.logger.error({ err: error, deliveryId }, 'webhook worker: writing an attempt result failed');
      return [pending];
    }
  }
}
