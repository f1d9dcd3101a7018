/**
 * Assembles the delivery engine from its parts (queue, sender, key cache, worker,
 * dispatcher) for the two process kinds: the API (src/webhooks/plugin.ts) and the
 * delivery-only worker (src/worker.ts).
 */
import { readFileSync } from 'node:fs';
import pg from 'pg';
import type { Registry } from 'prom-client';
import type { Config, MetricsConfig } from '../config.ts';
import { splitSchema, type Database } from '../db/database.ts';
import { DueBacklogRefresher } from './backlog-refresh.ts';
import { DeliveryDispatcher } from './dispatch.ts';
import type { EndpointKeyCache } from './endpoint-keys.ts';
import { registerDeliveryMetrics } from './metrics.ts';
import { DeliveryQueue, DUE_CHANNEL, ENDPOINT_CHANGED_CHANNEL } from './queue.ts';
import { WebhookSender } from './send.ts';
import type { LookupFn } from './url-policy.ts';
import { DEFAULT_MAX_IN_FLIGHT_PER_ENDPOINT, DeliveryWorker, type WorkerLogger } from './worker.ts';

const PACKAGE_VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
export const USER_AGENT = `DevCard-Webhooks/${PACKAGE_VERSION}`;
const LISTEN_RECONNECT_DELAY_MS = 5_000;

export interface DeliveryEngineOptions {
  db: Database;
  config: Pick<Config, 'webhooks' | 'databaseUrl'> & { metrics: Pick<MetricsConfig, 'backlogRefreshMs'> };
  logger: WorkerLogger;
  /** The endpoints' signing keys, opened from their sealed secrets (one cache per process). */
  keys: EndpointKeyCache;
  /** Run a worker in this process (config.webhooks.workerEnabled for the API; always for `pnpm worker`). */
  deliver: boolean;
  /** DNS resolver for the destination check (tests simulate rebinding with it). */
  lookup?: LookupFn;
  /** Where to expose the webhook metrics, if anywhere. */
  registry?: Registry;
}

export interface DeliveryEngine {
  queue: DeliveryQueue;
  dispatcher: DeliveryDispatcher;
  worker: DeliveryWorker | undefined;
  /** The worker's sender (absent without a worker); the worker closes it when it stops. */
  sender: WebhookSender | undefined;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export function createDeliveryEngine(options: DeliveryEngineOptions): DeliveryEngine {
  const { db, config, logger } = options;
  const queue = new DeliveryQueue(db.sql);
  const metrics =
    options.registry &&
    registerDeliveryMetrics(options.registry, {
      // Called at scrape time only, once `worker` below exists.
      inFlight: (): number => worker?.inFlight ?? 0,
    });
  const backlog =
    metrics &&
    new DueBacklogRefresher({
      countDue: () => queue.countDue(),
      report: (count) => metrics.dueBacklogCounted(count),
      intervalMs: config.metrics.backlogRefreshMs,
      onError: (error) => logger.error({ err: error }, 'metrics: counting due webhook deliveries failed'),
    });
  const sender = options.deliver
    ? new WebhookSender({
        timeoutMs: config.webhooks.timeoutMs,
        allowPrivateNetworks: config.webhooks.allowPrivateNetworks,
        lookup: options.lookup,
        userAgent: USER_AGENT,
        // The worker sends at most this many to one endpoint at once: none waits for a connection.
        maxConnectionsPerEndpoint: DEFAULT_MAX_IN_FLIGHT_PER_ENDPOINT,
      })
    : undefined;
  const worker: DeliveryWorker | undefined = sender
    ? new DeliveryWorker({
        queue,
        logger,
        metrics,
        keys: options.keys,
        sender,
        retryScheduleMs: config.webhooks.retryScheduleMs,
        timeoutMs: config.webhooks.timeoutMs,
        sweepIntervalMs: config.webhooks.sweepIntervalMs,
        retentionDays: config.webhooks.retentionDays,
        maxDeliveriesPerEndpoint: config.webhooks.maxDeliveriesPerEndpoint,
      })
    : undefined;
  const dispatcher = new DeliveryDispatcher({
    db,
    queue,
    worker,
    // Without a local worker, tell worker processes at once instead of at their next sweep.
    notify: !worker && db.kind === 'postgres',
    maxAttemptsPerDelivery: config.webhooks.maxAttemptsPerDelivery,
  });
  const listener = worker && db.kind === 'postgres' && config.databaseUrl ? new DueListener(config.databaseUrl, worker, logger) : undefined;
  // Other processes may change endpoints: until the listener is up, the worker reads before it sends.
  if (listener) worker?.hearsEndpointChanges(false);

  return {
    queue,
    dispatcher,
    worker,
    sender,
    async start() {
      worker?.start();
      listener?.start();
      backlog?.start();
    },
    async stop() {
      await backlog?.stop();
      await listener?.stop();
      await worker?.stop();
    },
  };
}

/**
 * LISTEN on DUE_CHANNEL (PostgreSQL): an API process without a worker notifies after each
 * dispatch, so a worker process delivers at once rather than at its next sweep. Best effort:
 * the sweep still finds everything if the connection drops.
 *
 * And on ENDPOINT_CHANGED_CHANNEL: a change of an endpoint in any process reaches the worker
 * here. That one is not best effort: while the connection is down the worker is told so, and
 * reads each endpoint before sending to it.
 */
class DueListener {
  #client: pg.Client | undefined;
  #stopped = false;
  #retry: NodeJS.Timeout | undefined;

  constructor(
    private readonly databaseUrl: string,
    private readonly worker: DeliveryWorker,
    private readonly logger: WorkerLogger,
  ) {}

  start(): void {
    void this.#connect();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#retry);
    const client = this.#client;
    this.#client = undefined;
    await client?.end().catch(() => {});
  }

  async #connect(): Promise<void> {
    if (this.#stopped) return;
    const client = new pg.Client({ connectionString: splitSchema(this.databaseUrl).connectionString, keepAlive: true });
    client.on('notification', (message) => {
      if (message.channel === ENDPOINT_CHANGED_CHANNEL && message.payload) this.worker.endpointChanged(message.payload);
      else this.worker.poke();
    });
    client.on('error', (error) => this.#lost(client, error));
    try {
      await client.connect();
      await client.query(`LISTEN ${DUE_CHANNEL}; LISTEN ${ENDPOINT_CHANGED_CHANNEL}`);
      if (this.#stopped) {
        await client.end();
        return;
      }
      this.#client = client;
      this.worker.hearsEndpointChanges(true);
      this.logger.info({ channel: DUE_CHANNEL }, 'webhook worker listening for dispatches');
    } catch (error) {
      this.#lost(client, error);
    }
  }

  #lost(client: pg.Client, error: unknown): void {
    if (this.#stopped) return;
    this.logger.warn({ err: error }, 'webhook LISTEN connection lost; relying on the sweep until it reconnects');
    this.worker.hearsEndpointChanges(false);
    if (this.#client === client) this.#client = undefined;
    void client.end().catch(() => {});
    clearTimeout(this.#retry);
    this.#retry = setTimeout(() => void this.#connect(), LISTEN_RECONNECT_DELAY_MS);
  }
}
