/**
 * How webhook destinations are resolved: with c-ares (`dns.Resolver`), not getaddrinfo.
 * getaddrinfo (`dns.lookup`) runs on libuv's 4-thread pool and cannot be cancelled, so a zone
 * that stops answering would hold those threads, and every other tenant's lookups (and login's
 * scrypt) would wait behind it. A c-ares query is asynchronous, ends at its deadline, is shared
 * by concurrent callers of the same name, and its answer is reused for its TTL.
 */
import { CANCELLED, NOTFOUND, TIMEOUT } from 'node:dns';
import { Resolver } from 'node:dns/promises';

/** A query still unanswered after this long is cancelled and counts as a timeout. */
export const DEFAULT_DNS_TIMEOUT_MS = 5_000;
/** Longest an answer is reused, whatever its TTL says. */
const MAX_ANSWER_TTL_MS = 300_000;
/** A name that failed (no such name, no answer in time) is not asked again for this long: one query per window, not one per attempt. */
const FAILURE_TTL_MS = 5_000;
/** Upper bound on remembered names; the least recently stored goes first. */
const MAX_CACHED_NAMES = 1_000;

/** RFC 6761 reserves these for the local machine; c-ares does not read /etc/hosts, so they are answered here. */
const LOCALHOST_NAME = /(^|\.)localhost\.?$/i;
const LOOPBACK_ADDRESSES: readonly ResolvedAddress[] = [
  { address: '127.0.0.1', family: 4 },
  { address: '::1', family: 6 },
];

type ResolvedAddress = { address: string; family: 4 | 6 };
type CachedAnswer = { expiresAt: number } & ({ addresses: ResolvedAddress[] } | { error: Error });

export interface DnsLookupOptions {
  /** Cancel a query after this long (default DEFAULT_DNS_TIMEOUT_MS). */
  timeoutMs?: number;
  /** Name servers, `ip` or `ip:port`; the system's (/etc/resolv.conf) when absent. */
  servers?: readonly string[];
}

/** Resolves a host name to its addresses; injectable so tests can simulate names and rebinding. */
export type LookupFn = (hostname: string) => Promise<Array<{ address: string; family: 4 | 6 }>>;

/** A LookupFn with its own cache; the process shares one (url-policy's default), tests make their own. */
export function createDnsLookup(options: DnsLookupOptions = {}): LookupFn {
  const timeoutMs = options.timeoutMs ?? DEFAULT_DNS_TIMEOUT_MS;
  const cache = new Map<string, CachedAnswer>();
  const pending = new Map<string, Promise<ResolvedAddress[]>>();

  const remember = (name: string, answer: CachedAnswer): void => {
    cache.delete(name);
    if (cache.size >= MAX_CACHED_NAMES) cache.delete(cache.keys().next().value!);
    cache.set(name, answer);
  };

  return async (hostname) => {
    if (LOCALHOST_NAME.test(hostname)) return LOOPBACK_ADDRESSES.map((entry) => ({ ...entry }));
    const name = hostname.toLowerCase().replace(/\.+$/, '');
    const cached = cache.get(name);
    if (cached && cached.expiresAt > Date.now()) {
      if ('error' in cached) throw cached.error;
      return cached.addresses;
    }
    // One query per name at a time, whoever asks: a name that hangs holds one query, not one per attempt.
    let query = pending.get(name);
    if (!query) {
      query = resolveAddresses(name, timeoutMs, options.servers).then(
        ({ addresses, ttlMs }) => {
          remember(name, { addresses, expiresAt: Date.now() + ttlMs });
          return addresses;
        },
        (error: Error) => {
          remember(name, { error, expiresAt: Date.now() + FAILURE_TTL_MS });
          throw error;
        },
      );
      const settled = (): void => void pending.delete(name);
      query.then(settled, settled);
      pending.set(name, query);
    }
    return query;
  };
}

/** A and AAAA records of `name` (IPv4 first) and how long they may be reused. */
async function resolveAddresses(
  name: string,
  timeoutMs: number,
  servers: readonly string[] | undefined,
): Promise<{ addresses: ResolvedAddress[]; ttlMs: number }> {
  // A resolver of its own, because cancel() ends every query of a resolver. c-ares retries a
  // lost packet once; the deadline below ends the query whatever its own backoff would do.
  const resolver = new Resolver({ timeout: Math.ceil(timeoutMs / 2), tries: 2 });
  if (servers) resolver.setServers([...servers]);
  const deadline = setTimeout(() => resolver.cancel(), timeoutMs);
  const [v4, v6] = await Promise.allSettled([resolver.resolve4(name, { ttl: true }), resolver.resolve6(name, { ttl: true })]).finally(() =>
    clearTimeout(deadline),
  );
  const records = [
    ...(v4.status === 'fulfilled' ? v4.value.map((r) => ({ ...r, family: 4 as const })) : []),
    ...(v6.status === 'fulfilled' ? v6.value.map((r) => ({ ...r, family: 6 as const })) : []),
  ];
  if (records.length > 0) {
    const ttlMs = Math.min(MAX_ANSWER_TTL_MS, ...records.map((r) => r.ttl * 1000));
    return { addresses: records.map(({ address, family }) => ({ address, family })), ttlMs };
  }
  const timedOut = [v4, v6].some((result) => result.status === 'rejected' && isTimeout(result.reason));
  throw timedOut
    ? Object.assign(new Error(`DNS query for ${name} timed out after ${timeoutMs} ms`), { code: TIMEOUT })
    : Object.assign(new Error(`${name} has no A or AAAA record`), { code: NOTFOUND });
}

/** c-ares' own timeout, or our deadline's cancel(). */
function isTimeout(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === TIMEOUT || code === CANCELLED;
}
