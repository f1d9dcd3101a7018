import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collectScans } from '../../bench/lib/query-plan.ts';
import { claimStatement } from '../../src/webhooks/queue/claim.ts';
import { explaining } from '../helpers/explaining.ts';
import { openQueueStore, type QueueStore } from '../helpers/queue-store.ts';

/**
 * A statement prepared while the queue is empty keeps that plan once a backlog arrives
 * (src/db/database.ts, sessionOptions): it must reach queue rows by index or ctid even then,
 * never by reading the queue whole. PostgreSQL only: the embedded store is one short-lived
 * process whose queue the planner sees as it is.
 */
describe.skipIf(!process.env.DATABASE_URL)('plans made on an empty queue', () => {
  let fixture: QueueStore;

  beforeAll(async () => {
    fixture = await openQueueStore('emptyplans');
  });

  afterAll(async () => {
    await fixture?.close();
  });

  it('the claim reads the queue by index and ctid, not by a sequential scan', async () => {
    const plans: unknown[] = [];
    const claim = claimStatement(
      { limit: 100, leaseMs: 60_000, perEndpointLimit: 32, inFlightByEndpoint: new Map() },
      undefined,
      crypto.randomUUID(),
    );
    await explaining(fixture.db.sql, plans).query(claim.text, claim.params);

    const queueScans = collectScans(plans).filter((scan) => scan.relation === 'webhook_queue');
    expect(queueScans.length).toBeGreaterThan(0);
    expect(queueScans.map((scan) => scan.type)).not.toContain('Seq Scan');
  });
});
