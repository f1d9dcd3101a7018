import { describe, it, expect } from 'vitest';
import { MAX_URL_LENGTH, checkWebhookUrl, isAddressAllowed, type UrlPolicyOptions } from '../../src/webhooks/url-policy.ts';
import type { LookupFn } from '../../src/webhooks/dns-lookup.ts';

/** A resolver that answers from a table and records what it was asked, so no test touches real DNS. */
function fakeLookup(table: Record<string, string[]>): LookupFn & { asked: string[] } {
  const asked: string[] = [];
  const lookup = async (hostname: string) => {
    asked.push(hostname);
    const addresses = table[hostname];
    if (!addresses) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' });
    return addresses.map((address) => ({ address, family: address.includes(':') ? (6 as const) : (4 as const) }));
  };
  return Object.assign(lookup, { asked });
}

const dns = {
  'hooks.example.com': ['93.184.216.34'],
  'rebind.example.com': ['127.0.0.1'],
  'mixed.example.com': ['93.184.216.34', '10.0.0.5'],
  'metadata.example.com': ['fd00:ec2::254'],
};

const strict = (): UrlPolicyOptions => ({ allowPrivateNetworks: false, lookup: fakeLookup(dns) });
const lenient = (): UrlPolicyOptions => ({ allowPrivateNetworks: true, lookup: fakeLookup(dns) });

const longUrl = 'https://hooks.example.com/' + 'a'.repeat(MAX_URL_LENGTH + 1 - 'https://hooks.example.com/'.length);

describe('checkWebhookUrl without private networks', () => {
  const rejected = [
    'https://127.0.0.1/',
    'https://127.1/',
    'https://2130706433/',
    'https://0x7f000001/',
    'https://0177.0.0.1/',
    'https://127.0.0.1./',
    'https://[::1]/',
    'https://[::ffff:127.0.0.1]/',
    'https://[::ffff:7f00:1]/',
    'https://[::ffff:10.0.0.1]/',
    'https://0.0.0.0/',
    'https://10.0.0.1/',
    'https://172.16.0.1/',
    'https://192.168.1.1/',
    'https://169.254.169.254/',
    'https://100.64.0.1/',
    'https://[fd00::1]/',
    'https://[fd00:ec2::254]/',
    'https://[fe80::1]/',
    'https://224.0.0.1/',
    'https://[ff02::1]/',
    'https://localhost/',
    'https://foo.localhost/',
    'https://localhost./',
    'https://LOCALHOST/',
    'https://printer.local/',
    'https://metadata.google.internal/',
    'https://[::]/',
    'https://[::127.0.0.1]/',
    'https://255.255.255.255/',
    'https://[64:ff9b::7f00:1]/',
    'https://[2002:7f00:1::]/',
    'https://good@127.0.0.1/',
    'https://user:pass@example.com/',
    'http://93.184.216.34/',
    'ftp://example.com/',
    'javascript:alert(1)',
    'not a url',
    longUrl,
    'https://rebind.example.com/',
    'https://mixed.example.com/',
    'https://metadata.example.com/',
    'https://nowhere.example.com/',
  ];

  it.each(rejected)('rejects %s', async (url) => {
    const result = await checkWebhookUrl(url, strict());
    expect(result.ok).toBe(false);
  });

  it('relies on WHATWG URL to normalise numeric IPv4 forms', () => {
    for (const host of ['127.1', '2130706433', '0x7f000001', '0177.0.0.1', '127.0.0.1.']) {
      expect(new URL(`https://${host}/`).hostname).toBe('127.0.0.1');
    }
  });

  it('says why a URL was rejected', async () => {
    const reasonOf = async (url: string) => {
      const result = await checkWebhookUrl(url, strict());
      return result.ok ? undefined : result.reason;
    };
    expect(await reasonOf('http://93.184.216.34/')).toMatch(/https/);
    expect(await reasonOf('https://user:pass@example.com/')).toMatch(/credentials/);
    expect(await reasonOf(longUrl)).toMatch(/2048/);
    expect(await reasonOf('not a url')).toMatch(/not valid/);
    expect(await reasonOf('https://127.0.0.1/')).toMatch(/loopback/);
    expect(await reasonOf('https://rebind.example.com/')).toBe('rebind.example.com resolves to a non-public address');
    expect(await reasonOf('https://nowhere.example.com/')).toBe('hostname could not be resolved');
  });

  it('rejects a name that resolves to nothing', async () => {
    const lookup: LookupFn = async () => [];
    expect(await checkWebhookUrl('https://empty.example.com/', { allowPrivateNetworks: false, lookup })).toEqual({
      ok: false,
      reason: 'hostname could not be resolved',
    });
  });

  it('rejects local names without asking DNS', async () => {
    const lookup = fakeLookup({ 'foo.localhost': ['93.184.216.34'] });
    const result = await checkWebhookUrl('https://foo.localhost/', { allowPrivateNetworks: false, lookup });
    expect(result.ok).toBe(false);
    expect(lookup.asked).toEqual([]);
  });

  it('accepts a public IPv4 literal without DNS', async () => {
    const options = strict();
    const result = await checkWebhookUrl('https://93.184.216.34/hook', options);
    expect(result).toMatchObject({ ok: true, addresses: [{ address: '93.184.216.34', family: 4 }] });
    expect((options.lookup as ReturnType<typeof fakeLookup>).asked).toEqual([]);
  });

  it('accepts a public IPv6 literal, without brackets in the address', async () => {
    const result = await checkWebhookUrl('https://[2606:4700::1111]/', strict());
    expect(result).toMatchObject({ ok: true, addresses: [{ address: '2606:4700::1111', family: 6 }] });
  });

  it('accepts a name that resolves to a public address and returns the parsed URL', async () => {
    const result = await checkWebhookUrl('https://hooks.example.com/devcard?x=1', strict());
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.url.href).toBe('https://hooks.example.com/devcard?x=1');
    expect(result.addresses).toEqual([{ address: '93.184.216.34', family: 4 }]);
  });

  it('accepts a URL of exactly the maximum length', async () => {
    const url = longUrl.slice(0, MAX_URL_LENGTH);
    expect((await checkWebhookUrl(url, strict())).ok).toBe(true);
  });
});

describe('checkWebhookUrl with private networks allowed', () => {
  it('accepts http and loopback addresses', async () => {
    expect(await checkWebhookUrl('http://127.0.0.1:8080/x', lenient())).toMatchObject({ ok: true });
    expect(await checkWebhookUrl('https://rebind.example.com/', lenient())).toMatchObject({ ok: true });
  });

  it('still rejects credentials, other schemes, bad and overlong URLs, and unresolvable names', async () => {
    for (const url of ['http://user:pass@127.0.0.1:8080/', 'ftp://127.0.0.1/', 'not a url', longUrl, 'https://nowhere.example.com/']) {
      expect((await checkWebhookUrl(url, lenient())).ok).toBe(false);
    }
  });
});

describe('checkWebhookUrl asked again about the same URL', () => {
  it('asks DNS every time: a name that starts resolving to a private address is refused at once', async () => {
    const url = 'https://turning.example.com/hook';
    const table: Record<string, string[]> = { 'turning.example.com': ['93.184.216.34'] };
    const lookup = fakeLookup(table);
    expect(await checkWebhookUrl(url, { allowPrivateNetworks: false, lookup })).toMatchObject({ ok: true });
    table['turning.example.com'] = ['169.254.169.254'];
    expect(await checkWebhookUrl(url, { allowPrivateNetworks: false, lookup })).toEqual({
      ok: false,
      reason: 'turning.example.com resolves to a non-public address',
    });
    expect(lookup.asked).toEqual(['turning.example.com', 'turning.example.com']);
  });

  it('judges a literal address under the policy of each call', async () => {
    const url = 'http://127.0.0.1:8080/same';
    expect(await checkWebhookUrl(url, lenient())).toMatchObject({ ok: true });
    expect(await checkWebhookUrl(url, strict())).toMatchObject({ ok: false });
    expect(await checkWebhookUrl(url, lenient())).toMatchObject({ ok: true });
  });
});

describe('isAddressAllowed', () => {
  it('allows only public unicast addresses', () => {
    expect(isAddressAllowed('93.184.216.34', false)).toBe(true);
    expect(isAddressAllowed('2606:4700::1111', false)).toBe(true);
    expect(isAddressAllowed('::ffff:93.184.216.34', false)).toBe(true);
    for (const address of ['127.0.0.1', '::1', '::ffff:7f00:1', '::7f00:1', '10.1.2.3', '192.0.2.1', '2001:db8::1']) {
      expect(isAddressAllowed(address, false)).toBe(false);
    }
  });

  it('allows every valid address when private networks are allowed, but never garbage', () => {
    expect(isAddressAllowed('127.0.0.1', true)).toBe(true);
    expect(isAddressAllowed('fe80::1', true)).toBe(true);
    expect(isAddressAllowed('not-an-ip', true)).toBe(false);
    expect(isAddressAllowed('', false)).toBe(false);
  });
});
