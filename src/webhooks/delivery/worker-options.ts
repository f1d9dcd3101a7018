/** The delivery worker's limits and timings, and their defaults. */
import type { DeliveryQueue } from '../queue/delivery-queue.ts';
import { noDeliveryMetrics, type DeliveryMetrics } from './delivery-metrics.ts';
import type { EndpointKeyCache } from './endpoint-keys.ts';
import { COMPLETION_BATCH_SIZE } from './result-writer.ts';
import { RETENTION_FIRST_RUN_DELAY_MS, RETENTION_INTERVAL_MS } from './retention-job.ts';
import type { WebhookSender } from './sender.ts';
import type { WorkerLogger } from './worker-logger.ts';

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
 * How far ahead of an endpoint's recent pace (endpoint-pace.ts) a dispatch may write its rows
 * claimed for this worker, beyond its claim-ahead share: rows that pace starts within this long.
 * At most a quarter of what a lease leaves for waiting (lease − timeout), so a pace that halves
 * meanwhile still starts them inside their lease.
 */
export const HOLD_AHEAD_MS = 5_000;
/** Rows a worker may hold in all through claims at dispatch (each ≈ one event body in memory). */
export const MAX_HELD_AT_DISPATCH = 16_384;
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
/**
 * Unwritten results held in memory at most (database slow or failing): at this many the worker
 * starts no attempt and claims nothing until writes bring them back under it. Attempts already
 * running still finish, so memory holds at most this plus the in-flight limit.
 */
export const MAX_UNWRITTEN_RESULTS = 2 * COMPLETION_BATCH_SIZE;

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
  /** See HOLD_AHEAD_MS; 0: a dispatch claims no more of an endpoint than its claim-ahead share. */
  holdAheadMs?: number;
  /** See WAKE_HORIZON_MS (tests shorten it). */
  wakeHorizonMs?: number;
  /** See MAX_UNWRITTEN_RESULTS (tests shorten it). */
  maxUnwrittenResults?: number;
  stopTimeoutMs?: number;
  retentionFirstRunDelayMs?: number;
  retentionIntervalMs?: number;
  random?: () => number;
}

export type ResolvedWorkerOptions = Required<Omit<DeliveryWorkerOptions, 'retentionDays' | 'maxDeliveriesPerEndpoint' | 'random'>> &
  Pick<DeliveryWorkerOptions, 'retentionDays' | 'maxDeliveriesPerEndpoint' | 'random'>;

export function withDefaults(options: DeliveryWorkerOptions): ResolvedWorkerOptions {
  // `??` rather than spread defaults: an option passed as undefined means "the default".
  return {
    ...options,
    metrics: options.metrics ?? noDeliveryMetrics,
    maxInFlight: options.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT,
    maxInFlightPerEndpoint: options.maxInFlightPerEndpoint ?? DEFAULT_MAX_IN_FLIGHT_PER_ENDPOINT,
    leaseMs: options.leaseMs ?? CLAIM_AHEAD * options.timeoutMs + LEASE_MARGIN_MS,
    holdAheadMs: options.holdAheadMs ?? HOLD_AHEAD_MS,
    wakeHorizonMs: options.wakeHorizonMs ?? WAKE_HORIZON_MS,
    maxUnwrittenResults: options.maxUnwrittenResults ?? MAX_UNWRITTEN_RESULTS,
    stopTimeoutMs: options.stopTimeoutMs ?? options.timeoutMs,
    retentionFirstRunDelayMs: options.retentionFirstRunDelayMs ?? RETENTION_FIRST_RUN_DELAY_MS,
    retentionIntervalMs: options.retentionIntervalMs ?? RETENTION_INTERVAL_MS,
  };
}
