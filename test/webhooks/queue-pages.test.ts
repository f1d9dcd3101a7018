import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openQueueStore, type QueueStore } from '../helpers/queue-store.ts';

/**
 * The queue keeps its pages when a backlog drains (migration 20261130220000_queue_keeps_its_pages):
 * vacuum would otherwise hand them back under an exclusive lock, and the planner, seeing a small
 * queue, would plan the next prepared statements with sequential scans of it.
 */
describe('the delivery queue after a backlog drains', () => {
  let fixture: QueueStore;

  beforeAll(async () => {
    fixture = await openQueueStore('pages');
  });

  afterAll(async () => {
    await fixture?.close();
  });

  it('keeps its pages through VACUUM', async () => {
    const { sql } = fixture.db;
    await sql.query(
      `INSERT INTO webhook_queue (endpoint_id, delivery_id, event_id, event_type, due_at)
       SELECT gen_random_uuid(), webhook_uuid7(), webhook_uuid7(), 'card.viewed', now() FROM generate_series(1, 5000)`,
    );
    const size = async () =>
      Number((await sql.query<{ bytes: string }>(`SELECT pg_relation_size('webhook_queue')::text AS bytes`))[0]?.bytes);
    const grown = await size();
    await sql.query('DELETE FROM webhook_queue');
    await sql.exec('VACUUM webhook_queue');

    expect(grown).toBeGreaterThan(8192 * 10);
    expect(await size()).toBe(grown);
  });
});
