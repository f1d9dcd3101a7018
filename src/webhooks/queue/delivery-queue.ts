/**
 * The delivery queue: the engine's raw SQL, one file per operation (insert, claim, complete,
 * release, requeue, due, retention, read-endpoint), behind this class.
 *
 * Where a delivery lives (the migration 20261130090000_delivery_queue_and_log): its event's bytes
 * in `webhook_events`, a `webhook_queue` row while it is pending, an insert-only
 * `webhook_delivery_log` row once finished, attempts that were retried in
 * `webhook_earlier_attempts`. `webhook_deliveries` is a read-only view over queue and log.
 *
 * Why raw SQL: what the engine needs — a fan-out `INSERT … SELECT`, claims with
 * `FOR UPDATE SKIP LOCKED`, per-endpoint fairness with a window function, and many attempt
 * results applied in one statement — is beyond what Prisma can express. Each operation is one
 * statement (one round trip, atomic on its own), written for both stores: PostgreSQL and the
 * embedded PGlite (which has a single connection, so nothing here holds a transaction open).
 *
 * Claim protocol: a claim stamps `claim_token` and a `lease_until` one lease ahead, so a worker
 * that dies mid-attempt leaves rows that simply come due again when the lease runs out. Writing
 * a result requires the token to still match: a lease that expired and was reclaimed by another
 * worker is never overwritten by the late one.
 *
 * Coalescing: `coalesce_key` marks a delivery still open to more views (see
 * insertForSubscribers in insert.ts), so only a pending row nobody has claimed may hold one; every
 * statement that claims or cancels a row clears it (cancelPendingDeliveries in endpoints/endpoint-service.ts too).
 */
import type { SqlRunner } from '../../db/sql-runner.ts';
import { claimDeliveries, claimDueDeliveries } from './claim.ts';
import { completeAttempts } from './complete.ts';
import { countDue, nextDueInMs } from './due.ts';
import { insertForEndpoint, insertForSubscribers, type InsertForEndpointParams, type InsertForSubscribersParams } from './insert.ts';
import { readEndpoint } from './read-endpoint.ts';
import { makeDue, releaseClaims, releaseDeliveries, type MadeDue } from './release.ts';
import { createDayPartitions, dropDayPartitions } from './partitions.ts';
import { requeueFailed, type RequeuedFailed, type RequeueFailedParams } from './requeue.ts';
import { forgetExpiredPreviousSecrets, pruneDeliveries, pruneDeliveriesOverCap } from './retention.ts';
import type { AppliedAttempt, AttemptRecord, ClaimOptions, ClaimResult, DispatchedRow, StoredEndpointConfig } from './types.ts';

/** The queue's operations on one store; each is documented where its statement is. */
export class DeliveryQueue {
  readonly #sql: SqlRunner;

  constructor(sql: SqlRunner) {
    this.#sql = sql;
  }

  insertForSubscribers(params: InsertForSubscribersParams): Promise<DispatchedRow[]> {
    return insertForSubscribers(this.#sql, params);
  }

  insertForEndpoint(params: InsertForEndpointParams): Promise<DispatchedRow | undefined> {
    return insertForEndpoint(this.#sql, params);
  }

  claimDueDeliveries(options: ClaimOptions): Promise<ClaimResult> {
    return claimDueDeliveries(this.#sql, options);
  }

  claimDeliveries(ids: readonly string[], options: ClaimOptions): Promise<ClaimResult> {
    return claimDeliveries(this.#sql, ids, options);
  }

  completeAttempts(records: readonly AttemptRecord[]): Promise<AppliedAttempt[]> {
    return completeAttempts(this.#sql, records);
  }

  releaseClaims(tokens: readonly string[]): Promise<number> {
    return releaseClaims(this.#sql, tokens);
  }

  releaseDeliveries(claims: ReadonlyArray<{ id: string; endpointId: string; claimToken: string }>): Promise<number> {
    return releaseDeliveries(this.#sql, claims);
  }

  makeDue(endpointId: string, deliveryId: string, maxAttempts: number): Promise<MadeDue> {
    return makeDue(this.#sql, endpointId, deliveryId, maxAttempts);
  }

  requeueFailed(params: RequeueFailedParams): Promise<RequeuedFailed> {
    return requeueFailed(this.#sql, params);
  }

  readEndpoint(endpointId: string): Promise<StoredEndpointConfig | undefined> {
    return readEndpoint(this.#sql, endpointId);
  }

  nextDueInMs(): Promise<number | undefined> {
    return nextDueInMs(this.#sql);
  }

  countDue(): Promise<number> {
    return countDue(this.#sql);
  }

  pruneDeliveries(olderThan: Date, batchSize: number): Promise<number> {
    return pruneDeliveries(this.#sql, olderThan, batchSize);
  }

  pruneDeliveriesOverCap(maxPerEndpoint: number, batchSize: number): Promise<number> {
    return pruneDeliveriesOverCap(this.#sql, maxPerEndpoint, batchSize);
  }

  createDayPartitions(now: Date, daysAhead: number): Promise<string[]> {
    return createDayPartitions(this.#sql, now, daysAhead);
  }

  dropDayPartitions(olderThan: Date): Promise<string[]> {
    return dropDayPartitions(this.#sql, olderThan);
  }

  forgetExpiredPreviousSecrets(expiredBefore: Date): Promise<number> {
    return forgetExpiredPreviousSecrets(this.#sql, expiredBefore);
  }
}
