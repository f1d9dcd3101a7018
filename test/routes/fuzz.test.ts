import { createHmac, randomUUID } from 'node:crypto';
import fc from 'fast-check';
import type { InjectOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERRORS } from '../../src/errors.ts';
import { EVENT_TYPES, SUBSCRIBABLE_EVENT_TYPES, VIEW_SOURCES } from '../../src/webhooks/events.ts';
import { TEST_ENV, type TestApp } from '../helpers/app.ts';
import { installRowWriteLog } from '../helpers/db-scan.ts';
import { signUp, type Session } from '../helpers/users.ts';
import { buildWebhookTestApp, fakeLookup } from '../helpers/webhook-api.ts';
import type { LookupFn } from '../../src/webhooks/dns-lookup.ts';

/**
 * Property-based fuzzing of every route with fast-check: random JSON, wrong types, huge
 * strings, deep nesting, unicode (lone surrogates, NUL), bad ids, bad tokens and bad content
 * types. For every request: never a 5xx; every 4xx has the error shape of the catalogue; a
 * rejected request writes no row (a trigger on every table logs row writes); and the app
 * still answers /health at the end.
 *
 * 10,000 requests in all on PostgreSQL. On the embedded store (PGlite: in-process, one
 * connection, slow to open) the file would take about a minute at that count, so it sends
 * 2,000 to keep within the suite's time budget; CI runs both stores. FUZZ_SEED and FUZZ_RUNS
 * override the defaults; a failure names the seed, the batch and the offending request.
 */
const SEED = Number(process.env.FUZZ_SEED ?? 20_261_128);
const TOTAL_RUNS = Number(process.env.FUZZ_RUNS ?? (process.env.DATABASE_URL ? 10_000 : 2_000));
/** Shares of TOTAL_RUNS per property. */
const SHARES = { routes: 0.6, bodies: 0.25, identities: 0.15 };
/** Requests per fast-check run; the write log is read once per batch. */
const BATCH_SIZE = 10;

type Method = 'GET' | 'POST' | 'PATCH' | 'DELETE' | 'PUT' | 'HEAD' | 'OPTIONS';

interface RouteSpec {
  method: Method;
  /** Fastify syntax, `:param` segments. */
  path: string;
  /** A body of roughly the right shape, for routes that take one. */
  body?: (fx: Fixtures) => fc.Arbitrary<unknown>;
}

interface Fixtures {
  alice: Session;
  bob: Session;
  tokens: string[];
  endpointIds: string[];
  deliveryIds: string[];
  cardIds: string[];
  usernames: string[];
}

// ---------------------------------------------------------------------------------------------
// Value generators

/** Strings that stress storage and parsing: unicode, lone surrogates, NUL, control characters, huge. */
const nastyString = fc.oneof(
  { weight: 4, arbitrary: fc.string({ unit: 'grapheme', maxLength: 40 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) }, // includes lone surrogates
  { weight: 1, arbitrary: fc.constantFrom('\u0000', 'a\u0000b', '\ud800', 'x\udfff', '\ud83d', '\u202e', '\ufeff', '\u0007\u001b[31m') },
  { weight: 1, arbitrary: fc.constantFrom('', ' ', '   \t\n', 'null', 'undefined', 'true', '[]', '{}', '__proto__', 'constructor') },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      "' OR 1=1 --",
      '"; DROP TABLE users; --',
      '${7*7}',
      '{{7*7}}',
      '<script>alert(1)</script>',
      '../../etc/passwd',
    ),
  },
  { weight: 1, arbitrary: fc.integer({ min: 200, max: 70_000 }).map((n) => 'x'.repeat(n)) },
);

const nastyNumber = fc.oneof(
  fc.integer(),
  fc.double(),
  fc.constantFrom(0, -0, -1, 1.5, 2 ** 31, 2 ** 53, -(2 ** 53), Number.MAX_SAFE_INTEGER + 2, 1e308, 5e-324),
);

/** Any JSON value, including deep nesting and nasty strings. */
const anyJson: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: fc.jsonValue({ maxDepth: 4 }) },
  { weight: 2, arbitrary: fc.dictionary(nastyString, fc.oneof(nastyString, nastyNumber, fc.boolean(), fc.constant(null)), { maxKeys: 6 }) },
  { weight: 1, arbitrary: fc.integer({ min: 50, max: 500 }).map((depth) => nest(depth)) },
  { weight: 1, arbitrary: fc.array(nastyString, { maxLength: 50 }) },
);

function nest(depth: number): unknown {
  let value: unknown = 'deep';
  for (let i = 0; i < depth; i++) value = i % 2 ? [value] : { a: value };
  return value;
}

/** Optional fields: each key present with a good value, a bad value, or absent. */
function shapedObject(fields: Record<string, fc.Arbitrary<unknown>>, extraKeys = true): fc.Arbitrary<Record<string, unknown>> {
  const entries = Object.entries(fields).map(([key, good]) =>
    fc.oneof(
      { weight: 5, arbitrary: good.map((value) => [key, value] as const) },
      {
        weight: 1,
        arbitrary: fc.oneof(nastyString, nastyNumber, fc.boolean(), fc.constant(null), anyJson).map((value) => [key, value] as const),
      },
      { weight: 1, arbitrary: fc.constant(undefined) },
    ),
  );
  const extra = extraKeys ? fc.option(fc.tuple(nastyString, anyJson), { freq: 8 }) : fc.constant(null);
  return fc.tuple(fc.tuple(...entries), extra).map(([pairs, more]) => {
    const object: Record<string, unknown> = {};
    for (const pair of pairs) if (pair) object[pair[0]] = pair[1];
    if (more) object[more[0]] = more[1];
    return object;
  });
}

const urlValue = fc.oneof(
  fc.constantFrom('https://hooks.example.com/fuzz', 'https://hooks.example.com/a?b=c#d', 'https://[2606:4700::1111]/x'),
  fc.constantFrom(
    'https://127.0.0.1/',
    'https://[::ffff:7f00:1]/',
    'https://metadata.google.internal/',
    'https://loopback.example.com/',
    'http://hooks.example.com/',
    'https://u:p@hooks.example.com/',
    'https://good.com\\@127.0.0.1/',
    'javascript:alert(1)',
    'https://nxdomain.example.com/',
  ),
  nastyString.map((s) => `https://hooks.example.com/${s}`),
  nastyString,
);
const eventsValue = fc.oneof(
  fc.subarray([...SUBSCRIBABLE_EVENT_TYPES], { minLength: 1 }),
  fc.array(fc.oneof(fc.constantFrom(...EVENT_TYPES), nastyString), { maxLength: 8 }),
);
/** Instants around the retention window (past, future, offsets, not ISO at all). */
const instantValue = fc.oneof(
  fc
    .date({ min: new Date(Date.now() - 40 * 86_400_000), max: new Date(Date.now() + 86_400_000), noInvalidDate: true })
    .map((date) => date.toISOString()),
  fc.constantFrom('2026-11-30', '2026-11-30T09:00:00', '2026-11-30T09:00:00+02:00', '+275760-09-13T00:00:00Z', '0000-01-01T00:00:00Z'),
  nastyNumber,
  nastyString,
);

// ---------------------------------------------------------------------------------------------
// Every route, with a body shape where it takes one

const ROUTES: RouteSpec[] = [
  {
    method: 'POST',
    path: '/auth/register',
    body: () =>
      shapedObject({
        email: fc.oneof(fc.emailAddress(), nastyString),
        username: fc.oneof(fc.stringMatching(/^[A-Za-z0-9_]{3,30}$/), nastyString),
        password: fc.oneof(fc.string({ minLength: 8, maxLength: 20 }), nastyString),
        displayName: nastyString,
      }),
  },
  {
    method: 'POST',
    path: '/auth/login',
    body: (fx) => shapedObject({ login: fc.oneof(fc.constantFrom(...fx.usernames), nastyString), password: nastyString }),
  },
  {
    method: 'POST',
    path: '/api/cards',
    body: () =>
      shapedObject({
        title: nastyString,
        company: nastyString,
        jobTitle: nastyString,
        bio: nastyString,
        email: fc.oneof(fc.emailAddress(), nastyString),
        phone: fc.oneof(fc.constant('+1 (555) 010-0000'), nastyString),
        website: fc.oneof(fc.webUrl(), nastyString),
        isPublic: fc.boolean(),
      }),
  },
  { method: 'GET', path: '/api/cards' },
  { method: 'POST', path: '/api/cards/:id/save' },
  { method: 'GET', path: '/api/u/:username' },
  { method: 'GET', path: '/api/u/card/:cardId' },
  { method: 'GET', path: '/api/u/:username/card/:cardId' },
  { method: 'GET', path: '/api/webhooks/event-types' },
  {
    method: 'POST',
    path: '/api/webhooks',
    body: () => shapedObject({ url: urlValue, events: eventsValue, description: fc.oneof(nastyString, fc.constant(null)) }),
  },
  { method: 'GET', path: '/api/webhooks' },
  { method: 'GET', path: '/api/webhooks/:id' },
  {
    method: 'PATCH',
    path: '/api/webhooks/:id',
    body: () =>
      shapedObject({ url: urlValue, events: eventsValue, description: fc.oneof(nastyString, fc.constant(null)), isActive: fc.boolean() }),
  },
  { method: 'DELETE', path: '/api/webhooks/:id' },
  {
    method: 'PATCH',
    path: '/api/webhooks/:id/rotate-secret',
    body: () => shapedObject({ gracePeriodSeconds: fc.oneof(fc.integer({ min: -10, max: 700_000 }), nastyNumber) }),
  },
  {
    method: 'POST',
    path: '/api/webhooks/:id/extend-previous-secret',
    body: () => shapedObject({ hours: fc.oneof(fc.integer({ min: -10, max: 200 }), nastyNumber) }),
  },
  { method: 'GET', path: '/api/webhooks/:id/deliveries' },
  { method: 'GET', path: '/api/webhooks/:id/deliveries/:deliveryId' },
  { method: 'GET', path: '/api/webhooks/:id/deliveries/:deliveryId/attempts' },
  { method: 'GET', path: '/api/webhooks/:id/health' },
  { method: 'POST', path: '/api/webhooks/:id/deliveries/:deliveryId/redeliver' },
  { method: 'POST', path: '/api/webhooks/:id/test' },
  {
    method: 'POST',
    path: '/api/webhooks/:id/recover',
    body: () => shapedObject({ since: instantValue, until: instantValue }),
  },
  { method: 'POST', path: '/api/webhooks/:id/verify-receiver' },
  { method: 'GET', path: '/health' },
  { method: 'GET', path: '/metrics' },
];

const openApiPath = (path: string) => path.replace(/:(\w+)/g, '{$1}');

// ---------------------------------------------------------------------------------------------
// Request generators

/** Percent-encodes a path segment; lone surrogates (which encodeURIComponent refuses) become invalid UTF-8. */
function encodeSegment(segment: string): string {
  return segment.replace(/[\ud800-\udbff][\udc00-\udfff]|[\s\S]/g, (char) => {
    try {
      return encodeURIComponent(char);
    } catch {
      return '%ED%A0%80';
    }
  });
}

const rawSegment = fc.constantFrom('%', '%zz', '%ff', '%c0%80', '%ed%a0%80', '%00', '%2e%2e', '..', '.', '%2F', 'a%20b', '%25');

function paramValue(fx: Fixtures, name: string): fc.Arbitrary<string> {
  // `:id` is an endpoint on webhook routes and a card on /api/cards/:id/save: both kinds for both.
  const known =
    name === 'username'
      ? fx.usernames
      : name === 'deliveryId'
        ? fx.deliveryIds
        : name === 'cardId'
          ? fx.cardIds
          : [...fx.endpointIds, ...fx.cardIds];
  return fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom(...known).map(encodeSegment) },
    { weight: 2, arbitrary: fc.constantFrom(...fx.endpointIds, ...fx.cardIds, ...fx.deliveryIds, ...fx.usernames).map(encodeSegment) },
    { weight: 1, arbitrary: fc.uuid().map((id) => (id.length % 2 ? id.toUpperCase() : id)) },
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        '00000000-0000-0000-0000-000000000000',
        '{' + randomUUID() + '}',
        randomUUID() + 'x',
        'card',
        'null',
        '0',
        '-1',
        '1e9',
      ),
    },
    { weight: 2, arbitrary: nastyString.filter((s) => s.length > 0 && s.length < 5_000).map(encodeSegment) },
    { weight: 1, arbitrary: rawSegment },
  );
}

const QUERY_KEYS = ['page', 'limit', 'status', 'eventType', 'source', 'window', 'utm_source', '__proto__'];
const queryValue = fc.oneof(
  fc.constantFrom('1', '2', '100', '101', '0', '-1', '1.5', '1e2', '1e20', 'NaN', 'Infinity', '', '0x10', ' 5 ', '9007199254740993'),
  fc.constantFrom('pending', 'success', 'failed', 'cancelled', 'delivered', ...EVENT_TYPES, ...VIEW_SOURCES, 'QR', '24h', '7d', '30d'),
  nastyString.filter((s) => s.length < 3_000),
  nastyNumber.map(String),
);
const queryString = fc
  .array(
    fc.tuple(
      fc.oneof(
        fc.constantFrom(...QUERY_KEYS),
        nastyString.filter((s) => s.length < 100),
      ),
      queryValue,
    ),
    { maxLength: 5 },
  )
  .map((pairs) => {
    if (pairs.length === 0) return '';
    return '?' + pairs.map(([key, value]) => `${encodeSegment(key)}=${encodeSegment(value)}`).join('&');
  });

function authorization(fx: Fixtures): fc.Arbitrary<string | undefined> {
  return fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom(`Bearer ${fx.tokens[0]}`, `Bearer ${fx.tokens[1]}`) },
    { weight: 3, arbitrary: fc.constantFrom(...fx.tokens.slice(2).map((token) => `Bearer ${token}`)) },
    { weight: 1, arbitrary: fc.constant(undefined) },
    {
      weight: 1,
      arbitrary: fc.oneof(
        fc.constantFrom(
          'Bearer',
          'Bearer ',
          `bearer ${fx.tokens[0]}`,
          `Basic ${Buffer.from('a:b').toString('base64')}`,
          `Bearer  ${fx.tokens[0]}`,
          `Bearer ${fx.tokens[0]} extra`,
        ),
        nastyString.filter((s) => s.length < 10_000 && !/[\r\n]/.test(s)).map((s) => `Bearer ${encodeSegment(s)}`),
      ),
    },
  );
}

const CONTENT_TYPES = [
  'application/json',
  'application/json; charset=utf-8',
  'APPLICATION/JSON',
  'application/json; charset=latin1',
  'application/jsonx',
  'application/vnd.api+json',
  'text/plain',
  'text/json',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  'application/octet-stream',
  '',
  ';;;',
  'application/json;;',
];

interface FuzzRequest {
  /** `METHOD /path` of the route the request was generated for. */
  route: string;
  options: InjectOptions;
}

/** Nesting too deep for a recursive JSON.stringify, written out as text. */
const deepJsonText = fc
  .tuple(fc.integer({ min: 1_000, max: 30_000 }), fc.boolean())
  .map(([depth, arrays]) => (arrays ? '['.repeat(depth) + ']'.repeat(depth) : '{"a":'.repeat(depth) + '"\\u0000"' + '}'.repeat(depth)));

/** Serialises a body: valid JSON mostly; sometimes malformed, truncated or very deep. */
const serialisedBody = (body: fc.Arbitrary<unknown>) =>
  fc.oneof(
    { weight: 8, arbitrary: body.map((value) => JSON.stringify(value)) },
    { weight: 1, arbitrary: body.map((value) => (JSON.stringify(value) ?? '').slice(0, -1)) },
    { weight: 1, arbitrary: deepJsonText },
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        '',
        '{',
        '{"a":',
        '[1,]',
        "{'a':1}",
        'nul',
        '\u0000',
        '{"a":1}{"b":2}',
        '\ufeff{}',
        '{"__proto__":{"admin":true}}',
        '{"constructor":{"prototype":{"x":1}}}',
      ),
    },
  );

function buildPath(route: RouteSpec, params: Record<string, string>): string {
  return route.path.replace(/:(\w+)/g, (_, name: string) => params[name] ?? 'x');
}

function paramsFor(fx: Fixtures, route: RouteSpec): fc.Arbitrary<Record<string, string>> {
  const names = [...route.path.matchAll(/:(\w+)/g)].map((m) => m[1]!);
  return fc.record(Object.fromEntries(names.map((name) => [name, paramValue(fx, name)])));
}

/** Property 1: a route, mostly its own method, params, query, token, and a body shaped for it. */
function routeRequest(fx: Fixtures): fc.Arbitrary<FuzzRequest> {
  return fc.constantFrom(...ROUTES).chain((route) =>
    fc
      .record({
        method: fc.oneof(
          { weight: 9, arbitrary: fc.constant(route.method) },
          { weight: 1, arbitrary: fc.constantFrom<Method>('GET', 'POST', 'PATCH', 'DELETE', 'PUT', 'HEAD', 'OPTIONS') },
        ),
        params: paramsFor(fx, route),
        query: queryString,
        authorization: authorization(fx),
        body: route.body ? fc.option(serialisedBody(route.body(fx)), { freq: 10 }) : fc.option(serialisedBody(anyJson), { freq: 2 }),
      })
      .map(({ method, params, query, authorization: auth, body }) => ({
        route: `${route.method} ${route.path}`,
        options: {
          method,
          url: buildPath(route, params) + query,
          headers: {
            ...(auth === undefined ? {} : { authorization: auth }),
            ...(body === null ? {} : { 'content-type': 'application/json' }),
          },
          ...(body === null ? {} : { payload: body }),
        },
      })),
  );
}

/** Property 2: bodies and transport: any JSON, huge and deep bodies, malformed JSON, any content type. */
function bodyRequest(fx: Fixtures): fc.Arbitrary<FuzzRequest> {
  return fc.constantFrom(...ROUTES).chain((route) =>
    fc
      .record({
        params: paramsFor(fx, route),
        authorization: fc.constantFrom(`Bearer ${fx.tokens[0]}`, `Bearer ${fx.tokens[1]}`),
        contentType: fc.option(fc.constantFrom(...CONTENT_TYPES), { freq: 8 }),
        body: fc.oneof(
          { weight: 4, arbitrary: serialisedBody(anyJson) },
          { weight: 2, arbitrary: route.body ? serialisedBody(route.body(fx)) : serialisedBody(anyJson) },
          { weight: 1, arbitrary: fc.integer({ min: 60 * 1024, max: 80 * 1024 }).map((n) => JSON.stringify({ title: 'x'.repeat(n) })) },
          { weight: 1, arbitrary: nastyString },
        ),
      })
      .map(({ params, authorization: auth, contentType, body }) => ({
        route: `${route.method} ${route.path}`,
        options: {
          method: route.method === 'GET' || route.method === 'DELETE' ? 'POST' : route.method,
          url: buildPath(route, params),
          headers: { authorization: auth, ...(contentType === null ? {} : { 'content-type': contentType }) },
          payload: body,
        },
      })),
  );
}

/** Property 3: who is asking and about what: every token kind against every route with known and unknown ids. */
function identityRequest(fx: Fixtures): fc.Arbitrary<FuzzRequest> {
  return fc.constantFrom(...ROUTES).chain((route) =>
    fc
      .record({
        params: paramsFor(fx, route),
        authorization: fc.oneof(fc.constantFrom(...fx.tokens.map((token) => `Bearer ${token}`)), authorization(fx)),
        body: route.body ? route.body(fx).map((value) => JSON.stringify(value)) : fc.constant(undefined),
      })
      .map(({ params, authorization: auth, body }) => ({
        route: `${route.method} ${route.path}`,
        options: {
          method: route.method,
          url: buildPath(route, params),
          headers: {
            ...(auth === undefined ? {} : { authorization: auth }),
            ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          },
          ...(body === undefined ? {} : { payload: body }),
        },
      })),
  );
}

// ---------------------------------------------------------------------------------------------
// Tokens: valid ones, and every way a token can be wrong

function hs256(payload: object, secret: string, header: object = { alg: 'HS256', typ: 'JWT' }): string {
  const encode = (part: object) => Buffer.from(JSON.stringify(part)).toString('base64url');
  const unsigned = `${encode(header)}.${encode(payload)}`;
  return `${unsigned}.${createHmac('sha256', secret).update(unsigned).digest('base64url')}`;
}

function badTokens(alice: Session, goodToken: string): string[] {
  const now = Math.floor(Date.now() / 1000);
  const claims = { sub: alice.id, username: alice.username };
  const [header, payload] = goodToken.split('.');
  return [
    hs256({ ...claims, iat: now - 7200, exp: now - 3600 }, TEST_ENV.JWT_SECRET!), // expired
    hs256({ ...claims, iat: now }, 'not-the-secret-not-the-secret-not-the-secret'), // wrong key
    `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url')}.${payload}.`, // alg none
    hs256({ ...claims, iat: now }, TEST_ENV.JWT_SECRET!, { alg: 'HS512', typ: 'JWT' }), // algorithm confusion
    hs256({ sub: randomUUID(), username: 'ghost', iat: now, exp: now + 3600 }, TEST_ENV.JWT_SECRET!), // account gone
    hs256({ sub: 'not-a-uuid', username: 'x', iat: now, exp: now + 3600 }, TEST_ENV.JWT_SECRET!), // malformed subject
    hs256({ iat: now, exp: now + 3600 }, TEST_ENV.JWT_SECRET!), // no subject
    `${header}.${payload}`, // no signature
    `${goodToken}x`, // tampered signature
    'a.b.c',
    '',
  ];
}

// ---------------------------------------------------------------------------------------------

describe('fuzzing every route', () => {
  let t: TestApp;
  let drainRowWrites: () => Promise<number[]>;

  // The fixture endpoints' host resolves to a public address while they are registered, then
  // "rebinds" to loopback: the receiver self-test's probes are refused before any socket opens
  // (private networks are not allowed), so fuzzing never reaches another host.
  const FIXTURE_HOST = 'hooks.example.com';
  let fixtureHostRebound = false;
  const lookup: LookupFn = async (hostname) =>
    fixtureHostRebound && hostname === FIXTURE_HOST ? [{ address: '127.0.0.1', family: 4 }] : fakeLookup(hostname);

  beforeAll(async () => {
    // No worker: rows change only because of the requests under test.
    t = await buildWebhookTestApp({ env: { WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'false', WEBHOOK_WORKER: 'off' }, lookup });
    drainRowWrites = await installRowWriteLog(t.db);
  });
  afterAll(async () => t?.close());

  /** Fresh users, cards, endpoints and deliveries for one property (an earlier one may have deleted some). */
  async function fixtures(): Promise<Fixtures> {
    fixtureHostRebound = false;
    const alice = await signUp(t.app);
    const bob = await signUp(t.app);
    const cardIds: string[] = [];
    for (const [owner, isPublic] of [
      [alice, true],
      [alice, false],
      [bob, true],
    ] as const) {
      const card = await t.db.prisma.card.create({ data: { ownerId: owner.id, title: 'Card', isPublic } });
      cardIds.push(card.id);
    }
    const endpointIds: string[] = [];
    const deliveryIds: string[] = [];
    for (const owner of [alice, bob]) {
      const created = await t.app.inject({
        method: 'POST',
        url: '/api/webhooks',
        headers: owner.auth,
        payload: { url: `https://${FIXTURE_HOST}/${owner.username}`, events: [...SUBSCRIBABLE_EVENT_TYPES] },
      });
      expect(created.statusCode).toBe(201);
      endpointIds.push(created.json().id);
      const test = await t.app.inject({ method: 'POST', url: `/api/webhooks/${created.json().id}/test`, headers: owner.auth });
      expect(test.statusCode).toBe(202);
      deliveryIds.push(test.json().deliveryId);
    }
    fixtureHostRebound = true;
    const good = [alice.auth.authorization.slice('Bearer '.length), bob.auth.authorization.slice('Bearer '.length)];
    return {
      alice,
      bob,
      tokens: [...good, ...badTokens(alice, good[0]!)],
      endpointIds,
      deliveryIds,
      cardIds,
      usernames: [alice.username, bob.username, alice.username.toUpperCase(), 'card'],
    };
  }

  const knownCodes = new Set(Object.keys(ERRORS));

  /** Sends one request and checks its answer: never a 5xx, and the error shape on a 4xx. */
  async function send(request: FuzzRequest): Promise<{ what: string; rejected: boolean; startedAt: number; endedAt: number }> {
    const startedAt = Date.now();
    const res = await t.app.inject(request.options);
    const endedAt = Date.now();
    const what = `${request.options.method} ${request.options.url} → ${res.statusCode} ${res.body.slice(0, 300)}`;
    expect(res.statusCode, what).toBeLessThan(500);
    // A HEAD answer has the headers of the GET answer and no body.
    if (res.statusCode >= 400 && request.options.method !== 'HEAD') {
      expect(res.headers['content-type'], what).toMatch(/^application\/json/);
      const body = res.json();
      expect(Object.keys(body), what).toEqual(['error']);
      expect(body.error, what).toEqual({
        code: expect.any(String),
        message: expect.any(String),
        ...('details' in body.error ? { details: body.error.details } : {}),
      });
      expect(knownCodes.has(body.error.code), what).toBe(true);
      expect(body.error.message.length, what).toBeGreaterThan(0);
    }
    return { what, rejected: res.statusCode >= 400, startedAt, endedAt };
  }

  /**
   * Sends a batch, then checks that no rejected request wrote a row. Reading the write log once
   * per batch rather than once per request halves the time the fuzzing takes. Each write is
   * laid against the requests in flight at its time (millisecond clock, so a write in the
   * millisecond where one request ends and the next starts belongs to either); a write only
   * rejected requests could have made is a failure, and so is one outside every request.
   */
  async function checkBatch(batch: FuzzRequest[]): Promise<void> {
    const sent = [];
    for (const request of batch) sent.push(await send(request));
    for (const at of await drainRowWrites()) {
      const suspects = sent.filter((s) => s.startedAt <= at && at <= s.endedAt + 1);
      expect(suspects.length, `a row was written at ${at} outside every request`).toBeGreaterThan(0);
      expect(
        suspects.some((s) => !s.rejected),
        `a rejected request wrote a row: ${suspects.map((s) => s.what).join(' | ')}`,
      ).toBe(true);
    }
  }

  async function runProperty(name: keyof typeof SHARES, arbitrary: (fx: Fixtures) => fc.Arbitrary<FuzzRequest>) {
    const fx = await fixtures();
    await drainRowWrites();
    const requests = Math.round(TOTAL_RUNS * SHARES[name]);
    await fc.assert(fc.asyncProperty(fc.array(arbitrary(fx), { minLength: BATCH_SIZE, maxLength: BATCH_SIZE }), checkBatch), {
      seed: SEED,
      numRuns: Math.ceil(requests / BATCH_SIZE),
      endOnFailure: true,
    });
    const health = await t.app.inject({ method: 'GET', url: '/health' });
    expect(health.statusCode).toBe(200);
    expect(health.json().status).toBe('ok');
  }

  it('covers every route the app registers (as documented in OpenAPI)', async () => {
    const doc = (await t.app.inject({ method: 'GET', url: '/docs/json' })).json() as { paths: Record<string, Record<string, unknown>> };
    const documented = Object.entries(doc.paths).flatMap(([path, operations]) =>
      Object.keys(operations).map((m) => `${m.toUpperCase()} ${path}`),
    );
    const fuzzed = ROUTES.map((route) => `${route.method} ${openApiPath(route.path)}`);
    expect(fuzzed.sort()).toEqual(documented.sort());
  });

  // Generous timeouts: the time these take depends on how busy the machine is.
  it('routes: each route with its own method, params, query, token and body shape', { timeout: 180_000 }, async () => {
    await runProperty('routes', routeRequest);
  });

  it('bodies: any JSON, huge, deep or malformed bodies, under any content type', { timeout: 120_000 }, async () => {
    await runProperty('bodies', bodyRequest);
  });

  it('identities: valid, expired, forged, alg-none and orphaned tokens against known and unknown ids', { timeout: 120_000 }, async () => {
    await runProperty('identities', identityRequest);
  });
});
