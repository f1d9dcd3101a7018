/**
 * Assembles the delivery engine from its parts (queue, sender, key cache, worker,
 * dispatcher) for the two process kinds: the API (src/webhooks/plugin.ts) and the
 * delivery-only worker (src/worker.ts).
 */
import { readFileSync } from 'node:fs';
import type { Registry } from 'prom-client';
import type { Config, MetricsConfig } from '../../config.ts';
import type { Database } from '../../db/database.ts';
import { DueBacklogRefresher } from './backlog-refresh.ts';
import { DeliveryDispatcher } from '../dispatch.ts';
import type { EndpointKeyCache } from './endpoint-keys.ts';
import { registerDeliveryMetrics } from './delivery-metrics.ts';
import { DeliveryQueue } from '../queue/delivery-queue.ts';
import { DueListener } from './due-listener.ts';
import { WebhookSender } from './sender.ts';
import type { LookupFn } from '../dns-lookup.ts';
import { DeliveryWorker } from './delivery-worker.ts';
import { DEFAULT_MAX_IN_FLIGHT_PER_ENDPOINT } from './worker-options.ts';
import type { WorkerLogger } from './worker-logger.ts';

const PACKAGE_VERSION = (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string })
  .version;
export const USER_AGENT = `DevCard-Webhooks/${PACKAGE_VERSION}`;

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
        // Measured per store (bench/README.md, "Holding ahead by pace"): it spares PostgreSQL the
        // backlog claims; on the embedded store alternated runs read more CPU a delivery with it.
        holdAheadMs: db.kind === 'embedded' ? 0 : undefined,
      })
    : undefined;
  const dispatcher = new DeliveryDispatcher({
    db,
    queue,
    worker,
    // Without a local worker, tell worker processes at once instead of at their next sweep.
    notify: !worker && db.kind === 'postgres',
    maxAttemptsPerDelivery: config.webhooks.maxAttemptsPerDelivery,
    retentionDays: config.webhooks.retentionDays,
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
