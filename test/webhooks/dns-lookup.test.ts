import { lookup as systemLookup } from 'node:dns/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDnsLookup } from '../../src/webhooks/dns-lookup.ts';
import { startDnsServer, type DnsServer } from '../helpers/dns-server.ts';
import { blockThreadPool } from '../helpers/thread-pool.ts';

const TIMEOUT_MS = 500;

describe('webhook DNS lookup (c-ares, against a real DNS server on 127.0.0.1)', () => {
  let dns: DnsServer;
  const newLookup = () => createDnsLookup({ servers: [dns.address], timeoutMs: TIMEOUT_MS });
  const queriesFor = (name: string) => dns.queries.filter((query) => query.startsWith(`${name} `));

  beforeAll(async () => {
    dns = await startDnsServer({
      'dual.example.test': { a: ['93.184.215.14'], aaaa: ['2606:2800:21f:cb07:6820:80da:af6b:8b2c'] },
      'v4.example.test': { a: ['127.0.0.1'] },
      'cached.example.test': { a: ['127.0.0.1'], ttl: 60 },
    });
  });
  afterAll(async () => dns.close());

  it('answers the A and AAAA records, IPv4 first', async () => {
    expect(await newLookup()('dual.example.test')).toEqual([
      { address: '93.184.215.14', family: 4 },
      { address: '2606:2800:21f:cb07:6820:80da:af6b:8b2c', family: 6 },
    ]);
  });

  it('a name the server never answers fails as a timeout, while other names keep resolving', async () => {
    dns.silent.add('silent.example.test');
    const lookup = newLookup();
    const outcomes: string[] = [];
    const silent = lookup('silent.example.test').then(
      () => outcomes.push('silent answered'),
      (error: NodeJS.ErrnoException) => outcomes.push(`silent ${error.code}`),
    );
    await lookup('v4.example.test').then(() => outcomes.push('v4 answered'));
    await silent;
    expect(outcomes).toEqual(['v4 answered', 'silent ETIMEOUT']);
  });

  it('concurrent lookups of one name share one query, and the failure is remembered briefly', async () => {
    dns.silent.add('hung.example.test');
    const lookup = newLookup();
    const results = await Promise.allSettled(Array.from({ length: 20 }, () => lookup('hung.example.test')));
    expect(results.every((result) => result.status === 'rejected')).toBe(true);
    await expect(lookup('hung.example.test')).rejects.toMatchObject({ code: 'ETIMEOUT' });
    // One A and one AAAA query (c-ares may resend each once within the deadline), not one per caller.
    expect(queriesFor('hung.example.test').length).toBeLessThanOrEqual(4);
  });

  it('a name that does not exist is ENOTFOUND', async () => {
    await expect(newLookup()('nowhere.example.test')).rejects.toMatchObject({ code: 'ENOTFOUND' });
  });

  it('reuses an answer for its TTL, and asks again when the TTL is 0', async () => {
    const lookup = newLookup();
    await lookup('cached.example.test');
    await lookup('cached.example.test');
    expect(queriesFor('cached.example.test')).toEqual(['cached.example.test A', 'cached.example.test AAAA']);
    const before = queriesFor('v4.example.test').length;
    await lookup('v4.example.test');
    await lookup('v4.example.test');
    expect(queriesFor('v4.example.test').length - before).toBe(4);
  });

  it('answers localhost names with loopback without asking DNS (c-ares does not read /etc/hosts)', async () => {
    const lookup = newLookup();
    expect(await lookup('localhost')).toEqual([
      { address: '127.0.0.1', family: 4 },
      { address: '::1', family: 6 },
    ]);
    expect(await lookup('hooks.localhost')).toHaveLength(2);
    expect(queriesFor('localhost')).toEqual([]);
    expect(queriesFor('hooks.localhost')).toEqual([]);
  });

  it('resolves while every libuv thread-pool thread is busy, where getaddrinfo waits', async () => {
    const pool = blockThreadPool();
    let systemAnswered = false;
    const system = systemLookup('localhost').then(() => (systemAnswered = true));
    try {
      expect(await newLookup()('v4.example.test')).toEqual([{ address: '127.0.0.1', family: 4 }]);
      expect(systemAnswered).toBe(false);
    } finally {
      await pool.release();
      await system;
    }
  });
});
