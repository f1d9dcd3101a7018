import pg from 'pg';
import { splitSchema } from '../../db/database.ts';
import { DUE_CHANNEL, ENDPOINT_CHANGED_CHANNEL } from '../queue/channels.ts';
import type { DeliveryWorker } from './delivery-worker.ts';
import type { WorkerLogger } from './worker-logger.ts';

const LISTEN_RECONNECT_DELAY_MS = 5_000;

/**
 * LISTEN on DUE_CHANNEL (PostgreSQL): an API process without a worker notifies after each
 * dispatch, so a worker process delivers at once rather than at its next sweep. Best effort:
 * the sweep still finds everything if the connection drops.
 *
 * And on ENDPOINT_CHANGED_CHANNEL: a change of an endpoint in any process reaches the worker
 * here. That one is not best effort: while the connection is down the worker is told so, and
 * reads each endpoint before sending to it.
 */
export class DueListener {
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
