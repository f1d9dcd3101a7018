import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { Config } from '../config.ts';
import type { Database } from '../db/database.ts';

declare module 'fastify' {
  interface FastifyInstance {
    config: Config;
    db: Database;
  }
}

/** Makes the configuration and database available to routes and services; closes the database last. */
export const databasePlugin = fp(
  async (app: FastifyInstance, opts: { config: Config; db: Database; ownsDatabase: boolean }) => {
    app.decorate('config', opts.config);
    app.decorate('db', opts.db);
    if (opts.ownsDatabase) app.addHook('onClose', async () => opts.db.close());
  },
  { name: 'database' },
);
