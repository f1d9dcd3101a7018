import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { OutcomeKind } from '../queue/types.ts';

/** What the worker reports; a no-op when the process exposes no metrics (the worker entry). */
export interface DeliveryMetrics {
  attemptFinished(outcome: OutcomeKind, durationMs: number): void;
}

/** What the API process's metrics take: the worker's reports, and the backlog its refresher counts. */
export interface EngineMetrics extends DeliveryMetrics {
  dueBacklogCounted(count: number): void;
}

export const noDeliveryMetrics: DeliveryMetrics = { attemptFinished: () => {} };

/** Webhook series on `registry` (prom-client; one registry per app, so tests can build many apps). */
export function registerDeliveryMetrics(
  registry: Registry,
  sources: {
    /** Attempts in flight in this process. */
    inFlight: () => number;
  },
): EngineMetrics {
  const deliveries = new Counter({
    name: 'webhook_deliveries_total',
    help: 'Webhook delivery attempts by outcome: success, retry (failed, will retry), failed (no attempt left), gone (410, endpoint disabled)',
    labelNames: ['outcome'] as const,
    registers: [registry],
  });
  // Zero-valued series exist from the start, so dashboards and rate() see every outcome.
  for (const outcome of ['success', 'retry', 'failed', 'gone'] as const) deliveries.inc({ outcome }, 0);

  const duration = new Histogram({
    name: 'webhook_attempt_duration_seconds',
    help: 'Duration of one webhook HTTP attempt, including the destination check',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });

  // Set by DueBacklogRefresher on its timer, never counted at scrape time: scrapes cost no query.
  const dueBacklog = new Gauge({
    name: 'webhook_due_backlog',
    help: 'Pending webhook deliveries that are due now (including expired leases), as last counted (every METRICS_BACKLOG_REFRESH_MS)',
    registers: [registry],
  });

  new Gauge({
    name: 'webhook_in_flight',
    help: 'Webhook attempts in flight in this process',
    registers: [registry],
    collect() {
      this.set(sources.inFlight());
    },
  });

  return {
    attemptFinished(outcome, durationMs) {
      deliveries.inc({ outcome });
      duration.observe(durationMs / 1000);
    },
    dueBacklogCounted(count) {
      dueBacklog.set(count);
    },
  };
}
