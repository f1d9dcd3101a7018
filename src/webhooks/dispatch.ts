import type { Database } from '../db/database.ts';
import type { SqlRunner } from '../db/sql-runner.ts';
import { AppError } from '../errors.ts';
import { coalescingOf } from './coalesce.ts';
import { deliveryNotFound, findOwnEndpoint } from './endpoints/find-own-endpoint.ts';
import { parseInput } from './endpoints/schemas.ts';
import { recoverInput, recoverWindow, type RecoverInput, type Recovered } from './endpoints/recover-window.ts';
import { buildEnvelope, renderBody } from './envelope.ts';
import type { EventData, SubscribableEventType, WebhookTestData } from './events.ts';
import { TEST_EVENT_TYPE } from './events.ts';
import { DeliveryQueue } from './queue/delivery-queue.ts';
import { fanOutCtes, fanOutValues, splitAtSubscriber, toDispatchedRows, type FanOutParams, type FanOutRow } from './queue/insert.ts';
import type { ClaimedDelivery, DispatchedRow, InsertClaim } from './queue/types.ts';
import type { DeliveryWorker } from './delivery/delivery-worker.ts';
import { isUuid, newEventId } from '../ids.ts';

export interface DispatchResult {
  eventId: string;
  deliveries: DispatchedRow[];
}

/** A fan-out to run inside an event source's own statement (DeliveryDispatcher.composeEvent). */
export interface ComposedEvent {
  /** CTEs for the statement's WITH list, after its subscriber CTE. */
  ctes: string;
  /** A scalar expression for the statement's SELECT list: the rows written, as JSON. */
  written: string;
  /** Values of the statement's parameters from `offset + 1` on. */
  params: unknown[];
  /** Takes the `written` value read back and hands the rows to the worker; call it once the statement has run. */
  settle(written: unknown): DispatchResult;
}

export interface DispatcherOptions {
  db: Database;
  queue: DeliveryQueue;
  /** The in-process worker, which takes the rows due now (absent when this process does not deliver). */
  worker?: Pick<DeliveryWorker, 'enqueue' | 'reserveClaim' | 'adopt' | 'noteBacklog' | 'expectDue'>;
  /** Signal worker processes over LISTEN/NOTIFY (PostgreSQL, when this process does not deliver). */
  notify: boolean;
  /** Attempts one delivery may have in all; redeliver refuses past it (config.webhooks.maxAttemptsPerDelivery). */
  maxAttemptsPerDelivery: number;
  /** How long finished deliveries are kept (config.webhooks.retentionDays): a recover window starts no earlier. */
  retentionDays: number;
}

/** What `withEvents` hands its function: the transaction, and the events to raise in it. */
export interface EventTransaction {
  /** Statements of the event source (a view, a save) run here, in the same transaction as the fan-outs. */
  sql: SqlRunner;
  /** `dispatch`, writing the delivery rows in this transaction. */
  dispatch<T extends SubscribableEventType>(userId: string, type: T, data: EventData<T>): Promise<void>;
}

/**
 * Events → delivery rows. The rows are written (durable) before `dispatch` resolves, so a
 * route that awaits it answers only once the event cannot be lost; the HTTP delivery happens
 * afterwards in the worker and never delays the response.
 */
export class DeliveryDispatcher {
  readonly #o: DispatcherOptions;

  constructor(options: DispatcherOptions) {
    this.#o = options;
  }

  /**
   * Fans an event out to every active endpoint of `userId` subscribed to `type`: one INSERT … SELECT,
   * which also claims the rows for the in-process worker when it has room. A `card.viewed` opens
   * or joins a coalesced delivery at endpoints that ask for one (coalesce.ts).
   */
  async dispatch<T extends SubscribableEventType>(userId: string, type: T, data: EventData<T>): Promise<DispatchResult> {
    const fanOut = await this.#fanOut(this.#o.queue, userId, type, data);
    fanOut.handOver();
    return fanOut.result;
  }

  /**
   * Runs `fn` in one transaction with the fan-outs it dispatches, so the event's source (a
   * recorded view, a first save) and its delivery rows commit together or not at all. The
   * worker gets the rows only after the commit: before it they do not exist for anyone else.
   */
  async withEvents<R>(fn: (tx: EventTransaction) => Promise<R>): Promise<R> {
    const handOvers: Array<() => void> = [];
    const result = await this.#o.db.transaction((sql) => {
      const queue = new DeliveryQueue(sql);
      return fn({
        sql,
        dispatch: async (userId, type, data) => {
          handOvers.push((await this.#fanOut(queue, userId, type, data)).handOver);
        },
      });
    });
    for (const handOver of handOvers) handOver();
    return result;
  }

  async #fanOut<T extends SubscribableEventType>(
    queue: DeliveryQueue,
    userId: string,
    type: T,
    data: EventData<T>,
  ): Promise<{ result: DispatchResult; handOver: () => void }> {
    const params = this.#fanOutParams(type, data);
    const deliveries = await queue.insertForSubscribers({ ...params, userId });
    return { result: dispatchResult(params.eventId, deliveries), handOver: () => this.#handOver(deliveries, params.claim) };
  }

  /**
   * For an event whose subscriber only its source's statement knows (the owner of a viewed
   * card): the fan-out as SQL to put in that statement, so the source's row and the delivery rows
   * are one autocommit statement — one round trip, one commit. `subscriber` names a CTE of that
   * statement yielding the subscribing user as `user_id` (at most one row; none: no event), and
   * `offset` is how many parameters the statement has before the fan-out's.
   */
  composeEvent<T extends SubscribableEventType>(
    type: T,
    data: Omit<EventData<T>, 'userId'>,
    at: { subscriber: string; offset: number },
  ): ComposedEvent {
    const params = this.#fanOutParams(type, data);
    return {
      ctes: fanOutCtes(at.subscriber, at.offset, this.#o.notify),
      written: `(SELECT coalesce(json_agg(f), '[]') FROM fan_out f)`,
      params: fanOutValues(params),
      settle: (written) => {
        const deliveries = toDispatchedRows(written as FanOutRow[], params);
        this.#handOver(deliveries, params.claim);
        return dispatchResult(params.eventId, deliveries);
      },
    };
  }

  /** The subscriber's id is rendered as "" and filled in by the statement (queue/insert.ts, SubscriberBody). */
  #fanOutParams<T extends SubscribableEventType>(type: T, data: Omit<EventData<T>, 'userId'>): FanOutParams {
    const eventId = newEventId();
    const envelope = buildEnvelope(eventId, type, { ...data, userId: '' } as EventData<T>, new Date());
    return {
      eventId,
      eventType: type,
      body: splitAtSubscriber(renderBody(eventId, type, envelope)),
      cardId: data.cardId,
      notify: this.#o.notify,
      claim: this.#o.worker?.reserveClaim(),
      coalesce: coalescingOf(envelope),
    };
  }

  /** Sends an event to one endpoint only, whatever it subscribes to (the test event). Undefined when the endpoint is missing or disabled. */
  async dispatchToEndpoint(
    endpointId: string,
    type: typeof TEST_EVENT_TYPE,
    data: WebhookTestData,
  ): Promise<{ eventId: string; delivery: DispatchedRow } | undefined> {
    const eventId = newEventId();
    const delivery = await this.#o.queue.insertForEndpoint({
      endpointId,
      eventId,
      eventType: type,
      body: renderBody(eventId, type, buildEnvelope(eventId, type, data, new Date())),
      notify: this.#o.notify,
    });
    if (!delivery) return undefined;
    this.#handOver([delivery]);
    return { eventId, delivery };
  }

  /**
   * Another attempt of an existing delivery (same id; attempts keep counting), due now.
   * 404 unless the endpoint is the user's and the delivery is the endpoint's; 409 when the
   * endpoint is disabled or the delivery has had all its attempts. An attempt already in flight
   * is left to finish.
   */
  async redeliver(params: { userId: string; endpointId: string; deliveryId: string }): Promise<{ deliveryId: string }> {
    const { userId, endpointId, deliveryId } = params;
    const endpoint = await findOwnEndpoint(this.#o.db.prisma, userId, endpointId, { isActive: true });
    if (!isUuid(deliveryId)) throw deliveryNotFound();
    if (!endpoint.isActive) throw new AppError('ENDPOINT_DISABLED');
    const { found, scheduled, attemptLimitReached } = await this.#o.queue.makeDue(endpointId, deliveryId, this.#o.maxAttemptsPerDelivery);
    if (!found) throw deliveryNotFound();
    if (attemptLimitReached) {
      throw new AppError(
        'ATTEMPT_LIMIT_REACHED',
        `This delivery has had ${this.#o.maxAttemptsPerDelivery} attempts, as many as a delivery may have`,
      );
    }
    if (scheduled) this.#handOver([{ id: deliveryId, endpointId, nextRetryAt: new Date() }]);
    return { deliveryId };
  }

  /**
   * Recovery after an outage: the endpoint's failed deliveries created in the window get another
   * attempt each (same ids; attempts keep counting), oldest first, except those at the attempt
   * cap, which are counted as skipped. 400 for a malformed window or one reaching past retention,
   * 404 unless the endpoint is the user's, 409 when it is disabled.
   */
  async recover(params: { userId: string; endpointId: string; window: RecoverInput }): Promise<Recovered> {
    const { userId, endpointId } = params;
    const window = recoverWindow(parseInput(recoverInput, params.window), { now: new Date(), retentionDays: this.#o.retentionDays });
    const endpoint = await findOwnEndpoint(this.#o.db.prisma, userId, endpointId, { isActive: true });
    if (!endpoint.isActive) throw new AppError('ENDPOINT_DISABLED');
    const result = await this.#o.queue.requeueFailed({
      endpointId,
      ...window,
      maxAttempts: this.#o.maxAttemptsPerDelivery,
      notify: this.#o.notify,
    });
    // Disabled between the two statements.
    if (!result.active) throw new AppError('ENDPOINT_DISABLED');
    // The rows come due from now on, oldest first: the worker's claims take them in that order.
    if (result.requeued > 0) this.#o.worker?.expectDue(0);
    return { requeued: result.requeued, skipped: result.skipped, ...window };
  }

  /** The test event for one of the user's endpoints: 404 / 409 as for redeliver. */
  async sendTestEvent(params: { userId: string; endpointId: string }): Promise<{ deliveryId: string }> {
    const endpoint = await findOwnEndpoint(this.#o.db.prisma, params.userId, params.endpointId, { id: true, isActive: true });
    if (!endpoint.isActive) throw new AppError('ENDPOINT_DISABLED');
    const sent = await this.dispatchToEndpoint(endpoint.id, TEST_EVENT_TYPE, { endpointId: endpoint.id });
    // Disabled or deleted between the two statements.
    if (!sent) throw new AppError('ENDPOINT_DISABLED');
    return { deliveryId: sent.delivery.id };
  }

  /**
   * Rows claimed at insert go straight to the worker. The others are claimed by it first —
   * except those a claiming insert left out (their endpoints hold their share already), which
   * the worker's backlog claim takes as those endpoints' attempts finish. An open coalescing
   * row is not due yet and must stay unclaimed to take more views: the worker only sets its
   * alarm for when it comes due.
   */
  #handOver(rows: readonly DispatchedRow[], insertClaim?: InsertClaim): void {
    const worker = this.#o.worker;
    if (!worker || rows.length === 0) return;
    const claimed: ClaimedDelivery[] = [];
    const unclaimed: DispatchedRow[] = [];
    for (const row of rows) {
      if (row.claimed) claimed.push(row.claimed);
      else if (row.coalescingDueInMs !== undefined) worker.expectDue(row.coalescingDueInMs);
      else unclaimed.push(row);
    }
    if (insertClaim) worker.adopt(claimed, insertClaim);
    if (unclaimed.length === 0) return;
    if (insertClaim) worker.noteBacklog(unclaimed.map((row) => row.endpointId));
    else worker.enqueue(unclaimed.map((row) => row.id));
  }
}

function dispatchResult(eventId: string, deliveries: readonly DispatchedRow[]): DispatchResult {
  return { eventId, deliveries: deliveries.map(({ id, endpointId, nextRetryAt }) => ({ id, endpointId, nextRetryAt })) };
}
