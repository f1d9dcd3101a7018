import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDnsLookup } from '../../src/webhooks/dns-lookup.ts';
import { buildTestApp, type TestApp } from '../helpers/app.ts';
import { startDnsServer, type DnsServer } from '../helpers/dns-server.ts';
import { startReceiver, type Receiver } from '../helpers/receiver.ts';
import { blockThreadPool } from '../helpers/thread-pool.ts';
import { signUp, uniqueUsername, type Session } from '../helpers/users.ts';
import { waitFor } from '../helpers/wait.ts';
import { createEndpoint } from '../helpers/webhook-api.ts';

const DNS_TIMEOUT_MS = 1_000;
const ENV = { WEBHOOK_TIMEOUT_MS: '3000', WEBHOOK_SWEEP_INTERVAL_MS: '200' };
const DELIVERIES = 5;

describe("delivery engine: one tenant's DNS stops answering", { timeout: 60_000 }, () => {
  let t: TestApp;
  let dns: DnsServer;
  let receiver: Receiver;

  beforeAll(async () => {
    dns = await startDnsServer({
      'stuck.example.test': { a: ['127.0.0.1'] },
      'hooks.example.test': { a: ['127.0.0.1'] },
    });
    receiver = await startReceiver();
    t = await buildTestApp({ env: ENV, lookup: createDnsLookup({ servers: [dns.address], timeoutMs: DNS_TIMEOUT_MS }) });
  });
  afterAll(async () => {
    await t?.close();
    await receiver?.close();
    await dns?.close();
  });

  const fire = async (owner: Session, n: number) => {
    for (let i = 0; i < n; i++) {
      await t.app.webhooks.dispatch(owner.id, 'card.viewed', { userId: owner.id, cardId: null, viewer: null, source: 'link' });
    }
  };

  it("the others' deliveries keep arriving, even with the libuv thread pool busy; its attempts fail as DNS timeouts", async () => {
    const stuckOwner = await signUp(t.app, uniqueUsername('stuckdns'));
    const stuck = await createEndpoint(t.app, stuckOwner, `http://stuck.example.test:${receiver.port}/stuck`, ['card.viewed']);
    const healthyOwner = await signUp(t.app, uniqueUsername('healthydns'));
    const healthy = await createEndpoint(t.app, healthyOwner, `http://hooks.example.test:${receiver.port}/healthy`, ['card.viewed']);

    // Registered while its DNS answered; now it never does. The thread pool is held as its
    // hung getaddrinfo calls (or logins' scrypt) would hold it.
    dns.silent.add('stuck.example.test');
    const pool = blockThreadPool();
    try {
      await fire(stuckOwner, DELIVERIES);
      await fire(healthyOwner, DELIVERIES);

      await waitFor(
        async () => (await t.db.prisma.webhookDelivery.count({ where: { endpointId: healthy.id, status: 'success' } })) === DELIVERIES,
        { what: 'the healthy endpoint to be served' },
      );
      expect(receiver.at('/healthy')).toHaveLength(DELIVERIES);

      const attempts = await waitFor(
        async () => {
          const rows = await t.db.prisma.webhookDeliveryAttempt.findMany({ where: { delivery: { endpointId: stuck.id } } });
          return rows.length >= DELIVERIES ? rows : undefined;
        },
        { what: "the stuck endpoint's first attempts" },
      );
      for (const attempt of attempts) {
        expect(attempt.error).toBe('destination not allowed: hostname could not be resolved in time');
        expect(attempt.responseCode).toBeNull();
      }
      expect(receiver.at('/stuck')).toHaveLength(0);
    } finally {
      await pool.release();
    }
  });
});
