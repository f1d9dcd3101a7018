// Process entry: configuration → app → listen; graceful shutdown on SIGTERM/SIGINT.
import { buildApp } from './app.ts';
import { loadConfigOrExit } from './config.ts';
import { buildMetricsListener } from './metrics-listener.ts';

const config = loadConfigOrExit();

const app = await buildApp({ config });
const metricsListener = config.metrics.port === undefined ? undefined : await buildMetricsListener(app);
const address = await app.listen({ port: config.port, host: config.host });
await metricsListener?.listen({ port: config.metrics.port, host: config.metrics.host });
// Where a newcomer goes next: the endpoint portal and the API reference.
app.log.info(`portal: ${address}/portal, API reference: ${address}/docs`);

let closing = false;
const shutdown = async (signal: NodeJS.Signals) => {
  if (closing) return;
  closing = true;
  app.log.info({ signal }, 'shutting down: no new connections, finishing requests');
  try {
    await metricsListener?.close();
    await app.close();
    process.exit(0);
  } catch (error) {
    app.log.error({ err: error }, 'shutdown failed');
    process.exit(1);
  }
};
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
