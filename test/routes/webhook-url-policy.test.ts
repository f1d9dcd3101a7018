import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestApp } from '../helpers/app.ts';
import { asUser, signUp, type Session } from '../helpers/users.ts';
import { buildWebhookTestApp, FAKE_DNS, fakeLookup, PUBLIC_ADDRESS } from '../helpers/webhook-api.ts';

/** Every host here is, or resolves to, somewhere a webhook must never reach. */
const REFUSED_HOSTS = [
  '127.0.0.1',
  '127.1',
  '2130706433',
  '0x7f000001',
  '0177.0.0.1',
  '[::1]',
  '[::ffff:127.0.0.1]',
  '[::ffff:7f00:1]',
  '0.0.0.0',
  '10.0.0.1',
  '172.16.0.1',
  '192.168.1.1',
  '169.254.169.254',
  '100.64.0.1',
  '[fd00::1]',
  '[fe80::1]',
  '224.0.0.1',
  'localhost',
  'LOCALHOST.',
  'foo.localhost',
  'loopback.example.com', // the fake resolver answers 127.0.0.1
  'v6-loopback.example.com', // ::1
  'metadata.example.com', // 169.254.169.254
  'mixed.example.com', // one public and one private answer
  'nxdomain.example.com', // does not resolve
];

const ACCEPTED_URLS = [
  'https://hooks.example.com/devcard',
  `https://${PUBLIC_ADDRESS}/hook`,
  'https://[2606:4700:4700::1111]/hook',
  'https://hooks.example.com:8443/path?x=1#frag',
];

describe('webhook URL policy through the API (private networks not allowed)', () => {
  let t: TestApp;
  let alice: Session;
  let endpointId: string;
  let endpointUrl: string;

  const create = (user: Session, url: string) =>
    asUser(t.app, user, { method: 'POST', url: '/api/webhooks', payload: { url, events: ['card.viewed'] } });
  const update = (user: Session, id: string, url: string) =>
    asUser(t.app, user, { method: 'PATCH', url: `/api/webhooks/${id}`, payload: { url } });

  beforeAll(async () => {
    t = await buildWebhookTestApp({ env: { WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'false' } });
    alice = await signUp(t.app, 'alice');
    const res = await create(alice, 'https://hooks.example.com/original');
    expect(res.statusCode).toBe(201);
    endpointId = res.json().id;
    endpointUrl = res.json().url;
  });
  afterAll(async () => t.close());

  it.each(REFUSED_HOSTS)('POST refuses https://%s/ with 400 URL_NOT_ALLOWED', async (host) => {
    const res = await create(alice, `https://${host}/hook`);
    expect(res.statusCode).toBe(400);
    expect(res.json().error).toMatchObject({ code: 'URL_NOT_ALLOWED', message: expect.stringMatching(/not allowed: .+/) });
  });

  it.each(REFUSED_HOSTS)('PATCH refuses https://%s/ with 400 URL_NOT_ALLOWED', async (host) => {
    const res = await update(alice, endpointId, `https://${host}/hook`);
    expect(res.statusCode).toBe(400);
    expect(res.json().error.code).toBe('URL_NOT_ALLOWED');
  });

  it('explains which rule refused a name, never the address it resolved to', async () => {
    for (const [host, answers] of Object.entries(FAKE_DNS)) {
      for (const res of [await create(alice, `https://${host}/hook`), await update(alice, endpointId, `https://${host}/hook`)]) {
        expect(res.statusCode, host).toBe(400);
        expect(res.json().error.message, host).toBe(`URL not allowed: ${host} resolves to a non-public address`);
        for (const { address } of answers) expect(res.body, host).not.toContain(address);
      }
    }
  });

  it('names a literal address the user wrote, with its range', async () => {
    const res = await create(alice, 'https://10.0.0.1/hook');
    expect(res.json().error.message).toBe('URL not allowed: 10.0.0.1 is not a public address (private)');
  });

  it('refuses plain http while private networks are not allowed', async () => {
    const res = await create(alice, 'http://hooks.example.com/hook');
    expect(res.statusCode).toBe(400);
    expect(res.json().error).toMatchObject({ code: 'URL_NOT_ALLOWED', message: expect.stringContaining('https') });
  });

  it('no refused URL was stored, and the endpoint kept its URL', async () => {
    expect(await t.db.prisma.webhookEndpoint.count({ where: { userId: alice.id } })).toBe(1);
    const res = await asUser(t.app, alice, { method: 'GET', url: `/api/webhooks/${endpointId}` });
    expect(res.json().url).toBe(endpointUrl);
  });

  it.each(ACCEPTED_URLS)('accepts the public URL %s on POST and PATCH', async (url) => {
    const user = await signUp(t.app);
    const created = await create(user, url);
    expect(created.statusCode).toBe(201);
    expect(created.json().url).toBe(url);
    const other = await create(user, 'https://hooks.example.com/other');
    expect(other.statusCode).toBe(201);
    const patched = await update(user, other.json().id, `${url}-patched`);
    expect(patched.statusCode).toBe(200);
    expect(patched.json().url).toBe(`${url}-patched`);
  });
});

describe('webhook URL policy with private networks allowed (local development)', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildWebhookTestApp({ env: { WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'true' } });
  });
  afterAll(async () => t.close());

  it('accepts http and loopback destinations, still refuses credentials and other schemes', async () => {
    const user = await signUp(t.app, 'local');
    const post = (url: string) => asUser(t.app, user, { method: 'POST', url: '/api/webhooks', payload: { url, events: ['card.viewed'] } });
    expect((await post('http://127.0.0.1:4000/hook')).statusCode).toBe(201);
    expect((await post('http://localhost:4000/hook')).statusCode).toBe(201);
    expect((await post('http://u:p@127.0.0.1:4000/hook')).json().error.code).toBe('URL_NOT_ALLOWED');
    expect((await post('ftp://127.0.0.1/hook')).json().error.code).toBe('URL_NOT_ALLOWED');
  });
});

describe('a name that rebinds to a private address after registration', () => {
  let answer = PUBLIC_ADDRESS;
  let t: TestApp;
  beforeAll(async () => {
    t = await buildWebhookTestApp({
      env: { WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'false' },
      lookup: async () => [{ address: answer, family: 4 }],
    });
  });
  afterAll(async () => t.close());

  it('the receiver self-test says which rule refused it, never the address it resolved to', async () => {
    const user = await signUp(t.app, 'rebinder');
    const created = await asUser(t.app, user, {
      method: 'POST',
      url: '/api/webhooks',
      payload: { url: 'https://rebind.example.com/hook', events: ['card.viewed'] },
    });
    expect(created.statusCode).toBe(201);
    answer = '10.20.30.40';
    const res = await asUser(t.app, user, { method: 'POST', url: `/api/webhooks/${created.json().id}/verify-receiver` });
    expect(res.statusCode).toBe(200);
    expect(res.json().verdict).toBe('unreachable');
    expect(res.json().cases[0].error).toBe('destination not allowed: rebind.example.com resolves to a non-public address');
    expect(res.body).not.toContain('10.20.30.40');
  });
});

describe('a name whose DNS never answers', () => {
  const TIMEOUT_MS = 500;
  let t: TestApp;
  beforeAll(async () => {
    t = await buildWebhookTestApp({
      env: { WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'false', WEBHOOK_TIMEOUT_MS: String(TIMEOUT_MS) },
      lookup: (hostname) => (hostname === 'hang.example.com' ? new Promise(() => undefined) : fakeLookup(hostname)),
    });
  });
  afterAll(async () => t.close());

  it('is refused on POST and PATCH with 400 URL_NOT_ALLOWED once the lookup times out', { timeout: 20_000 }, async () => {
    const user = await signUp(t.app, 'hanging');
    const post = (url: string) => asUser(t.app, user, { method: 'POST', url: '/api/webhooks', payload: { url, events: ['card.viewed'] } });
    const refused = {
      code: 'URL_NOT_ALLOWED',
      message: 'URL not allowed: hostname could not be resolved in time',
    };
    const created = await post('https://hang.example.com/hook');
    expect(created.statusCode).toBe(400);
    expect(created.json().error).toEqual(refused);

    const other = await post('https://hooks.example.com/hook');
    expect(other.statusCode).toBe(201);
    const patched = await asUser(t.app, user, {
      method: 'PATCH',
      url: `/api/webhooks/${other.json().id}`,
      payload: { url: 'https://hang.example.com/hook' },
    });
    expect(patched.statusCode).toBe(400);
    expect(patched.json().error).toEqual(refused);
  });
});
