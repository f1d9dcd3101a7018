// Delivery-only process entry (`pnpm worker`): configuration → database → migrations → worker.
// No HTTP listener. Run any number of these beside API processes started with WEBHOOK_WORKER=off;
// they share the queue through the database. SIGTERM/SIGINT stop it gracefully.
import pino from 'pino';
import { loadConfigOrExit } from './config.ts';
import { openDatabase } from './db/database.ts';
import { EndpointKeyCache } from './webhooks/delivery/endpoint-keys.ts';
import { createDeliveryEngine } from './webhooks/delivery/engine.ts';
import { SecretBox } from './webhooks/secrets.ts';

const config = loadConfigOrExit();

const logger = pino({ level: config.logLevel, base: { process: 'webhook-worker' } });
const db = await openDatabase({ ...config, onConnectionError: (err) => logger.warn({ err }, 'idle database connection lost') });
await db.migrate();
// A worker process always delivers: WEBHOOK_WORKER only switches the API process's own worker.
const keys = new EndpointKeyCache(new SecretBox(config.webhookEncryptionKey));
const engine = createDeliveryEngine({ db, config, logger, keys, deliver: true });
await engine.start();
logger.info({ store: db.kind }, 'webhook worker started');

let stopping = false;
const shutdown = async (signal: NodeJS.Signals) => {
  if (stopping) return;
  stopping = true;
  logger.info({ signal }, 'webhook worker stopping: finishing attempts in flight');
  try {
    await engine.stop();
    await db.close();
    process.exit(0);
  } catch (error) {
    logger.error({ err: error }, 'webhook worker shutdown failed');
    process.exit(1);
  }
};
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
