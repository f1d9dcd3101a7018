import { TIMEOUT } from 'node:dns';
import ipaddr from 'ipaddr.js';
import { createDnsLookup, DEFAULT_DNS_TIMEOUT_MS, type LookupFn } from './dns-lookup.ts';

/**
 * SSRF guard for webhook destinations (after Documenso's assert-webhook-url): the DNS lookup
 * is injectable so tests can simulate a name that resolves, or rebinds, to a private address.
 */

/** The process's resolver (dns-lookup.ts: c-ares with a deadline and a TTL cache, never the libuv thread pool). */
export const defaultLookup: LookupFn = createDnsLookup();

export interface UrlPolicyOptions {
  allowPrivateNetworks: boolean;
  lookup?: LookupFn;
  /** Give up on resolution after this long, whatever `lookup` does (default DEFAULT_DNS_TIMEOUT_MS). */
  lookupTimeoutMs?: number;
}

/** A judgement may be shared by every caller that checks the same URL text: its parts are read-only. */
export type UrlCheck =
  { ok: true; url: Readonly<URL>; addresses: ReadonlyArray<{ address: string; family: 4 | 6 }> } | { ok: false; reason: string };

export const MAX_URL_LENGTH = 2048;

/** The only ipaddr.js range name that is a public destination; every special range is refused. */
const PUBLIC_RANGE = 'unicast';

/** Names that point at the local machine or a private zone without needing DNS to say so. */
const LOCAL_NAME = /(^|\.)localhost$|\.local$|\.internal$/;

type Address = ipaddr.IPv4 | ipaddr.IPv6;

/** NAT64 well-known prefix (RFC 6052): DNS64 resolvers synthesise `64:ff9b::a.b.c.d` for IPv4-only hosts. */
const NAT64_WELL_KNOWN = ipaddr.parseCIDR('64:ff9b::/96');

/**
 * Parses an address, unwrapping IPv6 forms that carry an IPv4 address, so that
 * `::ffff:127.0.0.1` (mapped), `::127.0.0.1` (deprecated compatible) and `64:ff9b::127.0.0.1`
 * (NAT64) are judged as 127.0.0.1. The other translation ranges (NAT64 local-use
 * `64:ff9b:1::/48`, 6to4 `2002::/16`, Teredo `2001::/32`) keep their own ipaddr.js range
 * names and are refused whatever they embed: they are deprecated or operator-private.
 */
function parseAddress(address: string): Address | undefined {
  if (!ipaddr.isValid(address)) return undefined;
  const parsed = ipaddr.process(address);
  if (parsed instanceof ipaddr.IPv6 && (isIpv4Compatible(parsed) || parsed.match(NAT64_WELL_KNOWN))) {
    return ipaddr.fromByteArray(parsed.toByteArray().slice(12));
  }
  return parsed;
}

/** `::a.b.c.d` (first 96 bits zero); `::` and `::1` are left to their own IPv6 ranges. */
function isIpv4Compatible(address: ipaddr.IPv6): boolean {
  const parts = address.parts;
  const upperZero = parts.slice(0, 6).every((part) => part === 0);
  const lowerValue = (parts[6] ?? 0) * 0x10000 + (parts[7] ?? 0);
  return upperZero && lowerValue > 1;
}

/** ipaddr.js range name of an address (after unwrapping embedded IPv4), or undefined if unparsable. */
function addressRange(address: string): string | undefined {
  return parseAddress(address)?.range();
}

/** Is this single IP address an allowed destination? (used again at attempt time on the address actually connected to) */
export function isAddressAllowed(address: string, allowPrivateNetworks: boolean): boolean {
  const range = addressRange(address);
  if (range === undefined) return false;
  return allowPrivateNetworks || range === PUBLIC_RANGE;
}

function refuse(reason: string): UrlCheck {
  return { ok: false, reason };
}

/** Only for an address the user wrote: it tells them nothing they did not already know. */
function refusedAddressReason(address: string): string {
  return `${address} is not a public address (${addressRange(address) ?? 'invalid'})`;
}

/** Static checks (scheme, credentials, length, literal IP / localhost names) then DNS resolution; every resolved address must be allowed. */
export async function checkWebhookUrl(rawUrl: string, opts: UrlPolicyOptions): Promise<UrlCheck> {
  const { allowPrivateNetworks, lookup = defaultLookup, lookupTimeoutMs = DEFAULT_DNS_TIMEOUT_MS } = opts;
  const judged = judgedText(rawUrl, allowPrivateNetworks);
  if (!('host' in judged)) return judged;
  const { url, host, name } = judged;

  let addresses: Array<{ address: string; family: 4 | 6 }>;
  try {
    addresses = await withDeadline(lookup(host), lookupTimeoutMs);
  } catch (error) {
    return refuse(isTimeout(error) ? 'hostname could not be resolved in time' : 'hostname could not be resolved');
  }
  if (addresses.length === 0) return refuse('hostname could not be resolved');
  // One private answer is enough to refuse: the connection could pick any of them. The reason
  // names the rule, never the answer: quoting it would let anyone map internal DNS through us.
  if (addresses.some(({ address }) => !isAddressAllowed(address, allowPrivateNetworks))) {
    return refuse(`${name} resolves to a non-public address`);
  }
  return { ok: true, url, addresses };
}

/** A URL that passed every check its text allows, and now needs DNS: its name resolved, each address judged. */
type NeedsLookup = { url: Readonly<URL>; host: string; name: string };

/**
 * What the text alone decides, remembered per text: the worker checks the same few URLs on every
 * attempt, and parsing one and judging a literal address cost more than the rest of the check.
 * Only this part is remembered; what DNS says is asked every time (dns-lookup.ts caches it for
 * its TTL), so a name that starts resolving to a private address is refused at once.
 */
const judgedTexts = new Map<string, UrlCheck | NeedsLookup>();
/** Bounded like the DNS cache: the oldest judgement goes first. */
const MAX_JUDGED_TEXTS = 1_000;

function judgedText(rawUrl: string, allowPrivateNetworks: boolean): UrlCheck | NeedsLookup {
  const key = `${allowPrivateNetworks ? 'private' : 'public'} ${rawUrl}`;
  let judged = judgedTexts.get(key);
  if (judged === undefined) {
    judged = judgeText(rawUrl, allowPrivateNetworks);
    if (judgedTexts.size >= MAX_JUDGED_TEXTS) judgedTexts.delete(judgedTexts.keys().next().value!);
    judgedTexts.set(key, judged);
  }
  return judged;
}

function judgeText(rawUrl: string, allowPrivateNetworks: boolean): UrlCheck | NeedsLookup {
  if (rawUrl.length > MAX_URL_LENGTH) return refuse(`URL is longer than ${MAX_URL_LENGTH} characters`);
  // WHATWG URL reads `\` as `/` in https URLs while other parsers keep it, so `https://a.com\@10.0.0.1`
  // names a different host for us than for a human or another tool: refuse the ambiguity.
  if (rawUrl.includes('\\')) return refuse('URL must not contain a backslash');

  let url: URL;
  try {
    url = new URL(rawUrl);
  } catch {
    return refuse('URL is not valid');
  }
  // Normalisation (percent-encoding, punycode) can lengthen the URL we would actually store and call.
  if (url.href.length > MAX_URL_LENGTH) return refuse(`URL is longer than ${MAX_URL_LENGTH} characters`);
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return refuse('URL must use https');
  if (url.protocol === 'http:' && !allowPrivateNetworks) return refuse('URL must use https');
  if (url.username !== '' || url.password !== '') return refuse('URL must not contain credentials');

  // WHATWG URL has already rewritten 127.1, 2130706433, 0x7f000001 and 0177.0.0.1 to 127.0.0.1
  // and lower-cased the name; what remains is brackets around IPv6 and a trailing root dot.
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const name = host.replace(/\.+$/, '');
  if (name === '') return refuse('URL has no host');

  if (ipaddr.isValid(host)) {
    if (!isAddressAllowed(host, allowPrivateNetworks)) return refuse(refusedAddressReason(host));
    return { ok: true, url, addresses: [{ address: host, family: host.includes(':') ? 6 : 4 }] };
  }
  if (!allowPrivateNetworks && LOCAL_NAME.test(name)) return refuse(`${name} is a local host name`);
  // A single-label name (`metadata`, `intranet`) is completed by the resolver's local search domains.
  if (!allowPrivateNetworks && !name.includes('.')) return refuse(`${name} is not a fully qualified host name`);
  return { url, host, name };
}

/** Rejects with a DNS timeout when `promise` has not settled within `ms`; the lookup itself ends at its own deadline. */
function withDeadline<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(Object.assign(new Error(`no DNS answer within ${ms} ms`), { code: TIMEOUT })), ms);
  });
  return Promise.race([promise, expired]).finally(() => clearTimeout(timer));
}

function isTimeout(error: unknown): boolean {
  return typeof error === 'object' && error !== null && 'code' in error && error.code === TIMEOUT;
}
