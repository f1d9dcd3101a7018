import type { Database } from '../../src/db/database.ts';
import { newEventId } from '../../src/ids.ts';
import { coalescingOf } from '../../src/webhooks/coalesce.ts';
import { buildEnvelope, renderBody } from '../../src/webhooks/envelope.ts';
import type { EventData, EventEnvelope, SubscribableEventType } from '../../src/webhooks/events.ts';
import { splitAtSubscriber, type FanOutParams } from '../../src/webhooks/queue/insert.ts';
import { EndpointKeyCache } from '../../src/webhooks/delivery/endpoint-keys.ts';
import { DeliveryQueue } from '../../src/webhooks/queue/delivery-queue.ts';
import type { SecretBox } from '../../src/webhooks/secrets.ts';
import { WebhookSender } from '../../src/webhooks/delivery/sender.ts';
import { DeliveryWorker } from '../../src/webhooks/delivery/delivery-worker.ts';
import { type DeliveryWorkerOptions } from '../../src/webhooks/delivery/worker-options.ts';
import type { WorkerLogger } from '../../src/webhooks/delivery/worker-logger.ts';
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
  const store = await createTestStore({ migrated: true });
  const db = await store.open();
  await db.migrate();
  const user = await db.prisma.user.create({
    data: { email: `${username}@example.com`, username, displayName: username, passwordHash: 'x' },
  });
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

/** A delivery worker on `queue` without an app around it: short clocks, private networks allowed. */
export function standaloneWorker(
  queue: DeliveryQueue,
  logger: WorkerLogger,
  box: SecretBox,
  overrides: Partial<DeliveryWorkerOptions> = {},
): DeliveryWorker {
  // The sender gives up at the worker's attempt timeout, as the app's does (one setting for both).
  const timeoutMs = overrides.timeoutMs ?? 1000;
  return new DeliveryWorker({
    queue,
    logger,
    keys: new EndpointKeyCache(box),
    sender: new WebhookSender({ timeoutMs, allowPrivateNetworks: true, userAgent: 'test' }),
    retryScheduleMs: [100],
    timeoutMs,
    sweepIntervalMs: 50,
    ...overrides,
  });
}

export interface FanOutEvent<T extends SubscribableEventType> extends Pick<
  FanOutParams,
  'eventId' | 'eventType' | 'body' | 'cardId' | 'coalesce'
> {
  /** Its envelope, the subscriber's id left empty (the fan-out fills it in). */
  envelope: EventEnvelope<T>;
  /** The bytes a delivery of it to `userId`'s endpoints sends. */
  bodyFor(userId: string): string;
}

/**
 * An event as the dispatcher hands it to DeliveryQueue.insertForSubscribers: a new UUIDv7 id, its
 * body rendered around the subscriber's id (queue/insert.ts, SubscriberBody), and how it coalesces.
 */
export function fanOutEvent<T extends SubscribableEventType>(type: T, data: Omit<EventData<T>, 'userId'>, at = new Date()): FanOutEvent<T> {
  const eventId = newEventId();
  const envelope = buildEnvelope(eventId, type, { ...data, userId: '' } as EventData<T>, at);
  const body = splitAtSubscriber(renderBody(eventId, type, envelope));
  return {
    eventId,
    eventType: type,
    body,
    cardId: data.cardId,
    coalesce: coalescingOf(envelope),
    envelope,
    bodyFor: (userId) => body.prefix + userId + body.suffix,
  };
}
