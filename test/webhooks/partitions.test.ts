import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../src/db/database.ts';
import { PARTITIONED_TABLES } from '../../src/webhooks/queue/partitions.ts';
import type { DeliveryQueue } from '../../src/webhooks/queue/delivery-queue.ts';
import { insertDelivery } from '../helpers/deliveries.ts';
import { openQueueStore, type QueueStore } from '../helpers/queue-store.ts';

/**
 * Retention drops days, not rows (queue/partitions.ts): the job creates each table's day
 * partitions ahead, rows land in the partition of the day in their UUIDv7 id, and a past day is
 * dropped whole unless a pending delivery of it still waits.
 */
describe('day partitions', () => {
  const DAY_MS = 86_400_000;
  let fixture: QueueStore | undefined;
  /** Another store; on PostgreSQL another schema of the same database, whose partitions are not ours. */
  let other: QueueStore | undefined;
  let db: Database;
  let queue: DeliveryQueue;
  let endpointId: string;
  let tomorrowsDelivery: string;

  beforeAll(async () => {
    fixture = await openQueueStore('partitions');
    ({ db, queue } = fixture);
    const endpoint = await db.prisma.webhookEndpoint.create({
      data: { userId: fixture.userId, url: 'https://example.com/p', secretEncrypted: 'sealed', events: ['card.viewed'] },
    });
    endpointId = endpoint.id;
  });
  afterAll(async () => {
    await fixture?.close();
    await other?.close();
  });

  const partitionOf = async (table: string, key: string, id: string) =>
    (await db.sql.query<{ part: string }>(`SELECT tableoid::regclass::text AS part FROM ${table} WHERE ${key} = $1::uuid`, [id]))[0]?.part;

  it('creates the days ahead, from tomorrow, once; rows of a day land in its partition', async () => {
    const now = new Date();
    const created = await queue.createDayPartitions(now, 3);
    expect(created).toHaveLength(3 * PARTITIONED_TABLES.length);
    expect(await queue.createDayPartitions(now, 3)).toEqual([]);

    const tomorrowNoon = new Date(Math.floor(now.getTime() / DAY_MS) * DAY_MS + DAY_MS + DAY_MS / 2);
    const day = tomorrowNoon.toISOString().slice(0, 10).replaceAll('-', '');
    const finished = await insertDelivery(db, { endpointId, status: 'success', createdAt: tomorrowNoon });
    expect(await partitionOf('webhook_delivery_log', 'id', finished.id)).toBe(`webhook_delivery_log_p${day}`);
    expect(await partitionOf('webhook_events', 'id', finished.eventId)).toBe(`webhook_events_p${day}`);
    tomorrowsDelivery = finished.id;
    // Today's rows stay in the default partition: today's partition is never created afterwards.
    const today = await insertDelivery(db, { endpointId, status: 'success' });
    expect(await partitionOf('webhook_delivery_log', 'id', today.id)).toBe('webhook_delivery_log_default');
  });

  it('drops a past day whole, but not while a pending delivery of that day waits', async () => {
    const now = new Date();
    const inFourDays = new Date(now.getTime() + 4 * DAY_MS);
    const waitingDay = new Date(Math.floor(now.getTime() / DAY_MS) * DAY_MS + 2 * DAY_MS + 3_600_000);
    const waiting = await insertDelivery(db, { endpointId, status: 'pending', createdAt: waitingDay, nextRetryAt: inFourDays });

    other = await openQueueStore('partitions-other');
    const othersPartitions = await other.queue.createDayPartitions(now, 3);

    const dropped = await queue.dropDayPartitions(inFourDays);
    const names = (day: Date) => PARTITIONED_TABLES.map((t) => `${t}_p${day.toISOString().slice(0, 10).replaceAll('-', '')}`);
    const tomorrow = new Date(now.getTime() + DAY_MS);
    expect(dropped.sort()).toEqual([...names(tomorrow), ...names(new Date(now.getTime() + 3 * DAY_MS))].sort());
    const othersLeft = await other.db.sql.query<{ name: string }>(
      'SELECT t AS name FROM unnest($1::text[]) AS t WHERE to_regclass(t) IS NOT NULL',
      [othersPartitions],
    );
    expect(othersLeft).toHaveLength(othersPartitions.length);
    // The day of the waiting delivery is kept, with its event's bytes.
    expect(await partitionOf('webhook_events', 'id', waiting.eventId)).toMatch(/_p\d{8}$/);
    expect(await db.prisma.webhookDelivery.count({ where: { id: waiting.id } })).toBe(1);
    // The dropped day's deliveries are gone with it.
    expect(await db.prisma.webhookDelivery.count({ where: { id: tomorrowsDelivery } })).toBe(0);
  });
});
