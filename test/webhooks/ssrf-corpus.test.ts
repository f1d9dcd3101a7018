import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebhookSender } from '../../src/webhooks/delivery/sender.ts';
import { checkWebhookUrl, isAddressAllowed } from '../../src/webhooks/url-policy.ts';
import type { LookupFn } from '../../src/webhooks/dns-lookup.ts';
import type { TestApp } from '../helpers/app.ts';
import { startReceiver, type Receiver } from '../helpers/receiver.ts';
import { asUser, signUp, uniqueUsername, type Session } from '../helpers/users.ts';
import { waitFor } from '../helpers/wait.ts';
import { buildWebhookTestApp, createEndpoint, PUBLIC_ADDRESS } from '../helpers/webhook-api.ts';

/**
 * SSRF corpus: every way we know of to write "this machine, its network or its cloud metadata
 * service" as a webhook URL. Each must be refused by the URL policy, by the API (400
 * URL_NOT_ALLOWED, nothing stored) and again at attempt time (nothing is connected to).
 */

/** A resolver for names that point somewhere private; anything else resolves publicly. */
const PRIVATE_NAMES: Record<string, string> = {
  'metadata.google.internal': '169.254.169.254',
  'metadata.cloud.example.com': '169.254.169.254',
  'alibaba-metadata.example.com': '100.100.100.200',
  'ec2-v6-metadata.example.com': 'fd00:ec2::254',
  'nat64-loopback.example.com': '64:ff9b::7f00:1',
  'mapped-loopback.example.com': '::ffff:127.0.0.1',
  metadata: '169.254.169.254',
};
const lookup: LookupFn = async (hostname) => {
  const address = PRIVATE_NAMES[hostname.replace(/\.$/, '')] ?? PUBLIC_ADDRESS;
  return [{ address, family: address.includes(':') ? 6 : 4 }];
};

const SSRF_CORPUS: Array<[url: string, what: string]> = [
  // IPv6 literals
  ['https://[::]/', 'unspecified'],
  ['https://[::1]/', 'loopback'],
  ['https://[0:0:0:0:0:0:0:1]/', 'loopback, uncompressed'],
  ['https://[::ffff:127.0.0.1]/', 'IPv4-mapped loopback, dotted'],
  ['https://[::ffff:7f00:1]/', 'IPv4-mapped loopback, hex'],
  ['https://[::ffff:169.254.169.254]/', 'IPv4-mapped metadata address'],
  ['https://[::ffff:0:7f00:1]/', 'IPv4-translated (SIIT) loopback'],
  ['https://[::127.0.0.1]/', 'IPv4-compatible loopback'],
  ['https://[::a9fe:a9fe]/', 'IPv4-compatible metadata address'],
  ['https://[64:ff9b::7f00:1]/', 'NAT64 well-known prefix, loopback'],
  ['https://[64:ff9b::a00:1]/', 'NAT64 well-known prefix, 10.0.0.1'],
  ['https://[64:ff9b:1::a00:1]/', 'NAT64 local-use prefix'],
  ['https://[2002:7f00:1::]/', '6to4 of 127.0.0.1'],
  ['https://[2002:a9fe:a9fe::]/', '6to4 of 169.254.169.254'],
  ['https://[2001:0:4136:e378:8000:63bf:80ff:fffe]/', 'Teredo (client 127.0.0.1)'],
  ['https://[fe80::1]/', 'link-local'],
  ['https://[fe80::1%25eth0]/', 'link-local with a zone id'],
  ['https://[fd00:ec2::254]/', 'unique-local (EC2 IPv6 metadata)'],
  ['https://[fec0::1]/', 'deprecated site-local'],
  ['https://[ff02::1]/', 'multicast'],
  ['https://[100::1]/', 'discard prefix'],
  // IPv4 literals, in every spelling WHATWG URL accepts
  ['https://127.0.0.1/', 'loopback'],
  ['https://127.1/', 'short form'],
  ['https://2130706433/', 'decimal integer'],
  ['https://0x7f000001/', 'hex integer'],
  ['https://0177.0.0.1/', 'octal first part'],
  ['https://0x7f.1/', 'hex and short form'],
  ['https://127.0.0.1./', 'trailing root dot'],
  ['https://%31%32%37.0.0.1/', 'percent-encoded digits'],
  ['https://127%2E0%2E0%2E1/', 'percent-encoded dots'],
  ['https://１２７.０.０.１/', 'full-width digits (IDNA-mapped)'],
  ['https://0/', '0.0.0.0 as one number'],
  ['https://0.0.0.0/', 'unspecified'],
  ['https://10.0.0.1/', 'private'],
  ['https://172.16.0.1/', 'private'],
  ['https://192.168.1.1/', 'private'],
  ['https://100.64.0.1/', 'CGNAT'],
  ['https://169.254.169.254/', 'link-local, cloud metadata'],
  ['https://100.100.100.200/', 'Alibaba Cloud metadata (CGNAT)'],
  ['https://192.0.0.192/', 'IETF protocol assignments (Oracle metadata)'],
  ['https://198.18.0.1/', 'benchmarking'],
  ['https://224.0.0.1/', 'multicast'],
  ['https://240.0.0.1/', 'reserved'],
  ['https://255.255.255.255/', 'broadcast'],
  // Local names
  ['https://localhost/', 'localhost'],
  ['https://LOCALHOST/', 'upper case'],
  ['https://LocalHost./', 'mixed case, trailing dot'],
  ['https://localhost./', 'trailing dot'],
  ['https://foo.localhost/', 'subdomain of localhost'],
  ['https://loc%61lhost/', 'percent-encoded name'],
  ['https://ｌｏｃａｌｈｏｓｔ/', 'full-width letters (IDNA-mapped)'],
  ['https://printer.local/', 'mDNS'],
  ['https://metadata/', 'single label, completed by search domains'],
  ['https://intranet/', 'single label resolving publicly: still completed by local search domains'],
  // Cloud metadata names, refused by name and (for names we cannot know) by what they resolve to
  ['https://metadata.google.internal/', 'GCP metadata'],
  ['https://METADATA.GOOGLE.INTERNAL./', 'GCP metadata, upper case, trailing dot'],
  ['https://metadata.cloud.example.com/', 'resolves to 169.254.169.254'],
  ['https://alibaba-metadata.example.com/', 'resolves to 100.100.100.200'],
  ['https://ec2-v6-metadata.example.com/', 'resolves to fd00:ec2::254'],
  ['https://nat64-loopback.example.com/', 'resolves to a NAT64 loopback'],
  ['https://mapped-loopback.example.com/', 'resolves to an IPv4-mapped loopback'],
  // Userinfo and parser-confusion tricks
  ['https://good@127.0.0.1/', 'credentials'],
  ['https://good.com@127.0.0.1/', 'credentials that look like a host'],
  ['https://127.0.0.1#@good.com/', 'fragment that looks like userinfo'],
  ['https://127.0.0.1?@good.com/', 'query that looks like userinfo'],
  ['https://good.com\\@127.0.0.1/', 'backslash: WHATWG and other parsers disagree on the host'],
  ['https://good.com%40127.0.0.1/', 'percent-encoded @'],
];

describe('SSRF corpus', () => {
  it('has at least 30 forms, no duplicates', () => {
    expect(SSRF_CORPUS.length).toBeGreaterThanOrEqual(30);
    expect(new Set(SSRF_CORPUS.map(([url]) => url)).size).toBe(SSRF_CORPUS.length);
  });

  it.each(SSRF_CORPUS)('the URL policy refuses %s (%s)', async (url) => {
    const result = await checkWebhookUrl(url, { allowPrivateNetworks: false, lookup });
    expect(result).toMatchObject({ ok: false, reason: expect.any(String) });
  });

  it('judges a NAT64 address by the IPv4 address it embeds (DNS64 networks synthesise them)', () => {
    expect(isAddressAllowed('64:ff9b::5db8:d70e', false)).toBe(true); // 93.184.215.14
    for (const embedded of ['7f00:1', 'a9fe:a9fe', 'a00:1', 'c0a8:1', '6440:1', 'e000:1']) {
      expect(isAddressAllowed(`64:ff9b::${embedded}`, false), embedded).toBe(false);
    }
    // The operator-private NAT64 prefix, 6to4 and Teredo are refused whatever they embed.
    for (const address of ['64:ff9b:1::5db8:d70e', '2002:5db8:d70e::', '2001:0:4136:e378:8000:63bf:a247:28f1']) {
      expect(isAddressAllowed(address, false), address).toBe(false);
    }
  });

  it('the sender refuses every form at attempt time, before connecting', async () => {
    const sender = new WebhookSender({ timeoutMs: 2_000, allowPrivateNetworks: false, lookup, userAgent: 'test' });
    try {
      for (const [url, what] of SSRF_CORPUS) {
        const result = await sender.send({ endpointId: 'ep_1', url, headers: {}, body: '{}' });
        expect(result.ok, `${url} (${what})`).toBe(false);
        expect(result.statusCode, `${url} (${what})`).toBeUndefined();
        expect(result.error, `${url} (${what})`).toMatch(/^destination not allowed: /);
      }
    } finally {
      await sender.close();
    }
  });
});

describe('SSRF corpus through the API (private networks not allowed)', () => {
  let t: TestApp;
  let user: Session;
  let endpointId: string;

  beforeAll(async () => {
    t = await buildWebhookTestApp({ env: { WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'false' }, lookup });
    user = await signUp(t.app, 'ssrf');
    const res = await asUser(t.app, user, {
      method: 'POST',
      url: '/api/webhooks',
      payload: { url: 'https://hooks.example.com/ok', events: ['card.viewed'] },
    });
    expect(res.statusCode).toBe(201);
    endpointId = res.json().id;
  });
  afterAll(async () => t.close());

  it('refuses every form on POST and PATCH with 400 URL_NOT_ALLOWED, and stores none', async () => {
    for (const [url, what] of SSRF_CORPUS) {
      const created = await asUser(t.app, user, { method: 'POST', url: '/api/webhooks', payload: { url, events: ['card.viewed'] } });
      expect(created.statusCode, `POST ${url} (${what}): ${created.body}`).toBe(400);
      expect(created.json().error.code).toBe('URL_NOT_ALLOWED');
      const patched = await asUser(t.app, user, { method: 'PATCH', url: `/api/webhooks/${endpointId}`, payload: { url } });
      expect(patched.statusCode, `PATCH ${url} (${what}): ${patched.body}`).toBe(400);
      expect(patched.json().error.code).toBe('URL_NOT_ALLOWED');
    }
    const stored = await t.db.prisma.webhookEndpoint.findMany({ where: { userId: user.id }, select: { url: true } });
    expect(stored).toEqual([{ url: 'https://hooks.example.com/ok' }]);
  });
});

describe('redirects towards a private host', () => {
  // Even with private networks allowed (so both receivers, on 127.0.0.1, are reachable at all),
  // the engine never follows a redirect: in production a public receiver answering 30x with
  // `Location: http://127.0.0.1/…` therefore reaches nothing.
  let t: TestApp;
  let target: Receiver;
  const redirecting: Receiver[] = [];

  beforeAll(async () => {
    t = await buildWebhookTestApp({
      // With a worker: these deliveries are really attempted (every address involved is loopback).
      env: {
        WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'true',
        WEBHOOK_RETRY_SCHEDULE: '50ms',
        WEBHOOK_MAX_ENDPOINTS_PER_USER: '10',
        WEBHOOK_WORKER: 'on',
      },
    });
    target = await startReceiver();
  });
  afterAll(async () => {
    await t.close();
    await Promise.all([target, ...redirecting].map((r) => r.close()));
  });

  it('does not follow 301, 302, 303, 307 or 308: the private target receives nothing', async () => {
    const owner = await signUp(t.app, uniqueUsername('redirect'));
    const deliveries: Array<{ status: number; id: string }> = [];
    for (const status of [301, 302, 303, 307, 308]) {
      const receiver = await startReceiver((_request, res) => {
        res.writeHead(status, { location: `${target.origin}/internal` });
        res.end();
      });
      redirecting.push(receiver);
      const endpoint = await createEndpoint(t.app, owner, `${receiver.origin}/hook`);
      const res = await t.app.inject({ method: 'POST', url: `/api/webhooks/${endpoint.id}/test`, headers: owner.auth });
      expect(res.statusCode).toBe(202);
      deliveries.push({ status, id: res.json().deliveryId });
    }
    for (const { status, id } of deliveries) {
      const row = await waitFor(
        async () => {
          const delivery = await t.db.prisma.webhookDelivery.findUnique({ where: { id }, include: { attemptsLog: true } });
          return delivery?.status === 'failed' ? delivery : undefined;
        },
        { what: `the ${status} delivery to fail` },
      );
      expect(row.attemptsLog).toHaveLength(2);
      for (const attempt of row.attemptsLog)
        expect(attempt).toMatchObject({ responseCode: status, error: `redirect (${status}) not followed` });
    }
    expect(redirecting.every((r) => r.requests.length === 2)).toBe(true);
    expect(target.requests).toHaveLength(0);
  });
});
