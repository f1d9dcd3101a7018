import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { Database } from '../db/database.ts';

declare module 'fastify' {
  interface FastifyInstance {
    db: Database;
  }
}

/** Makes the database available to routes and services; closes it last when the app owns it. */
export const databasePlugin = fp(
  async (app: FastifyInstance, opts: { db: Database; ownsDatabase: boolean }) => {
    app.decorate('db', opts.db);
    if (opts.ownsDatabase) app.addHook('onClose', async () => opts.db.close());
  },
  { name: 'database' },
);
