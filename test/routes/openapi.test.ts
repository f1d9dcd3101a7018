import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PORTAL_PATH } from '../../src/routes/portal.ts';
import type { TestApp } from '../helpers/app.ts';
import { buildWebhookTestApp } from '../helpers/webhook-api.ts';

type HttpMethod = 'GET' | 'POST' | 'PATCH' | 'DELETE';

/** The webhook routes this module owns: each must be documented, authenticated with bearerAuth. */
const WEBHOOK_ROUTES: Array<[HttpMethod, string]> = [
  ['GET', '/api/webhooks/event-types'],
  ['POST', '/api/webhooks'],
  ['GET', '/api/webhooks'],
  ['GET', '/api/webhooks/:id'],
  ['PATCH', '/api/webhooks/:id'],
  ['DELETE', '/api/webhooks/:id'],
  ['PATCH', '/api/webhooks/:id/rotate-secret'],
  ['POST', '/api/webhooks/:id/extend-previous-secret'],
  ['GET', '/api/webhooks/:id/deliveries'],
  ['GET', '/api/webhooks/:id/deliveries/:deliveryId'],
  ['POST', '/api/webhooks/:id/verify-receiver'],
  ['POST', '/api/webhooks/:id/recover'],
  ['GET', '/api/webhooks/:id/health'],
];

/** Every other route of the contract: documented whenever this build registers it. */
const OTHER_CONTRACT_ROUTES: Array<[HttpMethod, string]> = [
  ['POST', '/api/webhooks/:id/deliveries/:deliveryId/redeliver'],
  ['POST', '/api/webhooks/:id/test'],
  ['POST', '/auth/register'],
  ['POST', '/auth/login'],
  ['POST', '/api/cards'],
  ['GET', '/api/cards'],
  ['POST', '/api/cards/:id/save'],
  ['GET', '/api/u/:username'],
  ['GET', '/api/u/card/:cardId'],
  ['GET', '/api/u/:username/card/:cardId'],
  ['GET', '/health'],
  ['GET', '/metrics'],
];

/** Fastify's `/:id` is OpenAPI's `/{id}`. */
const openApiPath = (url: string) => url.replace(/:(\w+)/g, '{$1}');

/**
 * Every (method, path) in Fastify's printRoutes tree: each line is one path segment, indented
 * four columns per level, with the methods registered there in parentheses.
 */
function registeredRoutes(tree: string): Array<[string, string]> {
  const routes: Array<[string, string]> = [];
  const stack: string[] = [];
  for (const line of tree.split('\n')) {
    const match = /^((?:│ {3}| {4})*)[├└]── (.+?)(?: \(([^)]*)\))?$/.exec(line);
    if (!match) continue;
    const depth = match[1]!.length / 4;
    stack.length = depth;
    stack.push(match[2]!);
    const path = stack.join('');
    for (const method of match[3]?.split(', ') ?? []) routes.push([method, path]);
  }
  return routes;
}

/** The requests the service sends, by the contract: one per event, and the coalesced card.viewed. */
const WEBHOOKS = ['card.viewed', 'card.viewed (coalesced)', 'contact.saved', 'webhook.test'];

/** The contract's headers of a webhook request, besides content-type (the body's media type in OpenAPI). */
const WEBHOOK_HEADERS = [
  'user-agent',
  'x-devcard-event',
  'x-devcard-delivery',
  'x-devcard-signature',
  'webhook-id',
  'webhook-timestamp',
  'webhook-signature',
];

interface Operation {
  tags?: string[];
  summary?: string;
  description?: string;
  security?: Array<Record<string, string[]>>;
  responses: Record<string, unknown>;
  requestBody?: unknown;
}

interface WebhookOperation extends Operation {
  parameters: Array<{ name: string; in: string; required: boolean; description: string; schema: { const?: string } }>;
  requestBody: {
    required: boolean;
    content: Record<string, { schema: { $ref: string }; examples: Record<string, { value: { type: string } }> }>;
  };
}

describe('OpenAPI document', () => {
  let t: TestApp;
  let doc: {
    openapi: string;
    paths: Record<string, Record<string, Operation>>;
    webhooks: Record<string, { post: WebhookOperation }>;
    components: { securitySchemes: Record<string, unknown>; schemas: Record<string, unknown> };
  };

  beforeAll(async () => {
    t = await buildWebhookTestApp();
    const res = await t.app.inject({ method: 'GET', url: '/docs/json' });
    expect(res.statusCode).toBe(200);
    doc = res.json();
  });
  afterAll(async () => t.close());

  it('declares the bearerAuth security scheme', () => {
    expect(doc.openapi).toBe('3.1.0');
    expect(doc.components.securitySchemes.bearerAuth).toMatchObject({ type: 'http', scheme: 'bearer' });
  });

  it('describes under webhooks every request the service sends: its headers, its body schema and an example', () => {
    expect(Object.keys(doc.webhooks)).toEqual(WEBHOOKS);
    const schemaNames = new Set<string>();
    for (const [name, { post }] of Object.entries(doc.webhooks)) {
      const type = name.split(' ')[0];
      expect(post.summary, name).toEqual(expect.any(String));
      expect(post.description, name).toEqual(expect.any(String));
      expect(post.parameters.map((parameter) => parameter.name).sort(), name).toEqual([...WEBHOOK_HEADERS].sort());
      for (const parameter of post.parameters) {
        expect(parameter, `${name} ${parameter.name}`).toMatchObject({ in: 'header', required: true, description: expect.any(String) });
      }
      expect(post.parameters.find((parameter) => parameter.name === 'x-devcard-event')!.schema.const).toBe(type);

      expect(Object.keys(post.requestBody.content)).toEqual(['application/json']);
      const { schema, examples } = post.requestBody.content['application/json']!;
      const schemaName = schema.$ref.replace('#/components/schemas/', '');
      expect(doc.components.schemas[schemaName], name).toMatchObject({ type: 'object', required: ['id', 'type', 'timestamp', 'data'] });
      schemaNames.add(schemaName);
      expect(Object.values(examples).map((example) => example.value.type)).toEqual([type]);
      expect(Object.keys(post.responses)).toEqual(expect.arrayContaining(['2XX', '410', 'default']));
    }
    expect(schemaNames.size).toBe(WEBHOOKS.length);
  });

  it.each(WEBHOOK_ROUTES)('documents %s %s with tags, summary, bearerAuth and error responses', (method, url) => {
    expect(t.app.hasRoute({ method, url })).toBe(true);
    const operation = doc.paths[openApiPath(url)]?.[method.toLowerCase()];
    expect(operation, `${method} ${url}`).toBeDefined();
    expect(operation!.tags).toContain('webhooks');
    expect(operation!.summary).toEqual(expect.any(String));
    expect(operation!.security).toEqual([{ bearerAuth: [] }]);
    expect(Object.keys(operation!.responses)).toEqual(expect.arrayContaining(['401']));
    expect(Object.keys(operation!.responses).some((status) => status.startsWith('2'))).toBe(true);
  });

  it('documents request bodies of the webhook writes', () => {
    expect(doc.paths['/api/webhooks']!.post!.requestBody).toBeDefined();
    expect(doc.paths['/api/webhooks/{id}']!.patch!.requestBody).toBeDefined();
    expect(doc.paths['/api/webhooks/{id}/extend-previous-secret']!.post!.requestBody).toBeDefined();
    expect(doc.paths['/api/webhooks/{id}/recover']!.post!.requestBody).toBeDefined();
  });

  it('documents the signature debugger fields of the delivery detail and the overlap of the endpoint detail', () => {
    const schemaOf = (path: string) => JSON.stringify(doc.paths[path]!.get!.responses['200']);
    const delivery = schemaOf('/api/webhooks/{id}/deliveries/{deliveryId}');
    for (const field of [
      'signature',
      'hints',
      'bodySha256',
      'bodyBytes',
      'secretVersions',
      'fingerprint',
      'clockSkewSeconds',
      'RECEIVER_ON_PREVIOUS_SECRET',
      'BODY_RESERIALISED',
      'SECRET_NOT_DECODED',
      'CLOCK_SKEW',
    ]) {
      expect(delivery, field).toContain(field);
    }
    const endpoint = schemaOf('/api/webhooks/{id}');
    for (const field of ['secretFingerprint', 'previousSecretOverlap', 'canExtend', 'receiverOnPreviousSecret'])
      expect(endpoint, field).toContain(field);
  });

  it('registers and documents every other route of the contract', () => {
    for (const [method, url] of OTHER_CONTRACT_ROUTES) {
      expect(t.app.hasRoute({ method, url }), `${method} ${url} registered`).toBe(true);
      expect(doc.paths[openApiPath(url)]?.[method.toLowerCase()], `${method} ${url} documented`).toBeDefined();
    }
  });

  it('documents exactly the routes the app registers (besides the docs UI itself and the portal, which are pages)', () => {
    const isPage = (url: string) => [`/docs`, PORTAL_PATH].some((prefix) => url === prefix || url.startsWith(`${prefix}/`));
    const registered = registeredRoutes(t.app.printRoutes({ commonPrefix: false }))
      .filter(([method, url]) => method !== 'HEAD' && !isPage(url))
      .map(([method, url]) => `${method} ${openApiPath(url)}`)
      .sort();
    const documented = Object.entries(doc.paths)
      .flatMap(([path, operations]) => Object.keys(operations).map((method) => `${method.toUpperCase()} ${path}`))
      .sort();
    expect(registered.length).toBeGreaterThanOrEqual(WEBHOOK_ROUTES.length + OTHER_CONTRACT_ROUTES.length);
    expect(documented).toEqual(registered);
  });

  it('serves the documentation UI as HTML at /docs', async () => {
    let res = await t.app.inject({ method: 'GET', url: '/docs' });
    if (res.statusCode >= 300 && res.statusCode < 400) {
      res = await t.app.inject({ method: 'GET', url: new URL(res.headers.location as string, 'http://localhost/docs/').pathname });
    }
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/text\/html/);
    expect(res.body).toMatch(/<html/i);
    // Same origin as the portal and its token: scripts from here only, none inline without a hash.
    const csp = String(res.headers['content-security-policy']);
    expect(csp).toMatch(/script-src 'self'[^;]*;/);
    expect(/script-src[^;]*unsafe-inline/.test(csp)).toBe(false);
    expect(csp).toContain("object-src 'none'");
    expect(csp).not.toContain('upgrade-insecure-requests');
  });
});
