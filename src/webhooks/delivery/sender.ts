/**
 * One HTTP attempt of a webhook delivery → an AttemptResult. Never throws: every failure
 * (policy, network, timeout, bad status) is data for the delivery log and the retry policy.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { LookupFunction } from 'node:net';
import { Pool } from 'undici';
import { isRecordableStatus, responseDateFrom, textFromBytes } from './receiver-values.ts';
import { classifyResponse, parseRetryAfter, RESPONSE_BODY_LIMIT_BYTES } from './retry-policy.ts';
import { checkWebhookUrl } from '../url-policy.ts';
import { Deadline } from './deadline.ts';
import { postRequest } from './post-request.ts';
import type { LookupFn } from '../dns-lookup.ts';

/** A pool unused for this long is closed; its keep-alive sockets are long gone by then anyway. */
const POOL_IDLE_TTL_MS = 60_000;
/** Upper bound on cached pools, so many distinct endpoints cannot grow memory without limit (an evicted pool's requests still finish). */
const MAX_CACHED_POOLS = 500;

const NETWORK_ERRORS: Readonly<Record<string, string>> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ETIMEDOUT: 'connect timed out',
  UND_ERR_CONNECT_TIMEOUT: 'connect timed out',
  UND_ERR_SOCKET: 'connection closed by receiver',
};

export interface AttemptResult {
  ok: boolean;
  statusCode?: number;
  /** The first RESPONSE_BODY_LIMIT_BYTES of the response, as storable text (receiver-values.ts). */
  responseBody?: string;
  retryAfterMs?: number;
  /** The receiver's `Date` header, when it sent a valid one in a sane range: its clock, for clock-skew hints. */
  responseDate?: Date;
  error?: string;
  /** `beforeStart` said no: no request was made, so this is no attempt at all. */
  superseded?: boolean;
  durationMs: number;
  startedAt: Date;
}

export interface WebhookRequest {
  /** Each endpoint has its own connection pool: another endpoint's slow requests never hold its connections. */
  endpointId: string;
  url: string;
  /** The signing and x-devcard-* headers; content-type and user-agent are added here. */
  headers: Record<string, string>;
  body: string | Buffer;
  /**
   * Asked after the destination check, synchronously before the request starts: false when
   * what the request was built from (url, signing secrets) no longer holds. Nothing can happen
   * between this answer and the start.
   */
  beforeStart?: () => boolean;
}

export interface WebhookSenderOptions {
  /** Whole attempt: DNS check, connect, response headers and body. */
  timeoutMs: number;
  allowPrivateNetworks: boolean;
  lookup?: LookupFn;
  userAgent: string;
  /**
   * Connections one endpoint's pool may open: at least as many as the caller sends to one
   * endpoint at once, so a request never queues in the pool behind that endpoint's own (the
   * worker passes its per-endpoint in-flight limit). Unbounded when absent.
   */
  maxConnectionsPerEndpoint?: number;
}

type VettedAddress = { address: string; family: 4 | 6 };
/** What the receiver answered (or why there is no answer), before the attempt's timing is added. */
type ResponseSummary = Omit<AttemptResult, 'durationMs' | 'startedAt'>;

export class WebhookSender {
  readonly #opts: WebhookSenderOptions;
  /** Map order is least recently used first, which makes eviction a scan from the front. */
  readonly #pools = new Map<string, { pool: Pool; lastUsedAt: number }>();
  #closed = false;

  readonly #timeoutError: string;

  constructor(opts: WebhookSenderOptions) {
    this.#opts = opts;
    this.#timeoutError = `timeout after ${opts.timeoutMs} ms`;
  }

  async send(req: WebhookRequest): Promise<AttemptResult> {
    const startedAt = new Date();
    const summary = await this.#attempt(req);
    return { ...summary, startedAt, durationMs: Date.now() - startedAt.getTime() };
  }

  async close(): Promise<void> {
    this.#closed = true;
    const pools = [...this.#pools.values()].map((entry) => entry.pool);
    this.#pools.clear();
    await Promise.all(pools.map((pool) => pool.close()));
  }

  async #attempt(req: WebhookRequest): Promise<ResponseSummary> {
    if (this.#closed) return { ok: false, error: 'sender closed' };
    const { timeoutMs } = this.#opts;
    const timedOut = { ok: false, error: this.#timeoutError };
    // One deadline for the whole attempt, whichever stage (DNS, connect, headers, body) it cuts short.
    const deadline = new Deadline(timeoutMs);
    try {
      const check = await deadline.race(
        checkWebhookUrl(req.url, {
          allowPrivateNetworks: this.#opts.allowPrivateNetworks,
          lookup: this.#opts.lookup,
          lookupTimeoutMs: timeoutMs,
        }),
      );
      if (check === undefined) return timedOut;
      // Before the verdict too: a refusal of a url that was changed meanwhile is no attempt either.
      if (req.beforeStart && !req.beforeStart())
        return { ok: false, superseded: true, error: 'endpoint changed before the request started' };
      if (!check.ok) return { ok: false, error: `destination not allowed: ${check.reason}` };

      const pool = this.#poolFor(req.endpointId, check.url, check.addresses);
      const headers = { ...req.headers, 'content-type': 'application/json', 'user-agent': this.#opts.userAgent };
      const outcome = await postRequest(
        pool,
        { path: `${check.url.pathname}${check.url.search}`, headers, body: req.body },
        RESPONSE_BODY_LIMIT_BYTES,
        deadline,
      );
      const answered = outcome.statusCode === undefined ? {} : { statusCode: outcome.statusCode };
      if (outcome.kind === 'timedOut') return { ...timedOut, ...answered };
      if (outcome.kind === 'failed') return { ok: false, ...answered, error: describeError(outcome.error) };
      return describeResponse(outcome.statusCode, outcome.headers, textFromBytes(outcome.body, RESPONSE_BODY_LIMIT_BYTES));
    } catch (error) {
      return { ok: false, error: describeError(error) };
    } finally {
      deadline.clear();
    }
  }

  /**
   * One pool per endpoint (and vetted addresses), never per origin: users who share a receiver
   * host do not share its connections, so one's slow path cannot queue another's requests.
   * A pool connects only to the addresses vetted for this attempt: its lookup returns them
   * instead of asking DNS again, so a rebinding answer between check and connect is never
   * used. The URL keeps its hostname, so the Host header, TLS SNI and certificate check are
   * those of the original URL.
   */
  #poolFor(endpointId: string, url: Readonly<URL>, addresses: readonly VettedAddress[]): Pool {
    const now = Date.now();
    this.#evictIdlePools(now);
    const key = `${endpointId} ${url.origin} ${addresses.map((a) => a.address).join(',')}`;
    const cached = this.#pools.get(key);
    this.#pools.delete(key);
    const pool =
      cached?.pool ??
      new Pool(url.origin, {
        connections: this.#opts.maxConnectionsPerEndpoint ?? null,
        connect: { lookup: pinnedLookup(addresses), timeout: this.#opts.timeoutMs },
      });
    this.#pools.set(key, { pool, lastUsedAt: now });
    return pool;
  }

  #evictIdlePools(now: number): void {
    for (const [key, entry] of this.#pools) {
      if (this.#pools.size < MAX_CACHED_POOLS && now - entry.lastUsedAt < POOL_IDLE_TTL_MS) break;
      this.#pools.delete(key);
      // close() lets a request still in flight on this pool finish.
      void entry.pool.close();
    }
  }
}

function pinnedLookup(addresses: readonly VettedAddress[]): LookupFunction {
  return (hostname, options, callback) => {
    const first = addresses[0];
    if (!first) {
      callback(Object.assign(new Error(`no vetted address for ${hostname}`), { code: 'ENOTFOUND' }), '');
    } else if (options.all) {
      // Node asks for every address when it races IPv4 and IPv6 (autoSelectFamily).
      callback(
        null,
        addresses.map(({ address, family }) => ({ address, family })),
      );
    } else {
      callback(null, first.address, first.family);
    }
  };
}

function describeResponse(statusCode: number, headers: IncomingHttpHeaders, responseBody: string): ResponseSummary {
  if (!isRecordableStatus(statusCode)) return { ok: false, error: `invalid HTTP status ${statusCode}` };
  const responseDate = responseDateFrom(firstValue(headers['date']));
  if (classifyResponse(statusCode) === 'success') return { ok: true, statusCode, responseBody, ...(responseDate && { responseDate }) };
  const retryAfterMs = parseRetryAfter(firstValue(headers['retry-after']), new Date());
  const redirect = statusCode >= 300 && statusCode < 400;
  return {
    ok: false,
    statusCode,
    responseBody,
    ...(responseDate && { responseDate }),
    ...(retryAfterMs !== undefined && { retryAfterMs }),
    ...(redirect && { error: `redirect (${statusCode}) not followed` }),
  };
}

function firstValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function describeError(error: unknown): string {
  const code = errorCode(error);
  const known = code === undefined ? undefined : NETWORK_ERRORS[code];
  if (known) return known;
  const message = error instanceof Error ? error.message : String(error);
  return code && !message.includes(code) ? `${message} (${code})` : message;
}

function errorCode(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null || !('code' in error)) return undefined;
  return typeof error.code === 'string' ? error.code : undefined;
}
