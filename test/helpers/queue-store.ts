import type { Database } from '../../src/db/database.ts';
import { DeliveryQueue } from '../../src/webhooks/queue.ts';
import { createTestStore, type TestStore } from './store.ts';

export interface QueueStore {
  store: TestStore;
  db: Database;
  queue: DeliveryQueue;
  /** A user to own endpoints. */
  userId: string;
  close(): Promise<void>;
}

/** The delivery queue on a fresh migrated store, without an app or a worker around it. */
export async function openQueueStore(username: string): Promise<QueueStore> {
  const store = await createTestStore();
  const db = await store.open();
  await db.migrate();
  const user = await db.prisma.user.create({ data: { email: `${username}@example.com`, username, displayName: username, passwordHash: 'x' } });
  return {
    store,
    db,
    queue: new DeliveryQueue(db.sql),
    userId: user.id,
    async close() {
      await db.close();
      await store.drop();
    },
  };
}
