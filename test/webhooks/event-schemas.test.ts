import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp, type TestApp } from '../helpers/app.ts';
import { createCard } from '../helpers/cards.ts';
import { startReceiver, type ReceivedRequest, type Receiver } from '../helpers/receiver.ts';
import { signUp, uniqueUsername, type Session } from '../helpers/users.ts';
import { waitFor } from '../helpers/wait.ts';
import { createEndpoint } from '../helpers/webhook-api.ts';

/** What HTTP itself puts on a request; every other header a receiver gets must be in the document. */
const TRANSPORT_HEADERS = new Set(['host', 'connection', 'content-length']);
const COALESCED = 'card.viewed (coalesced)';

interface HeaderParameter {
  name: string;
  in: string;
  required: boolean;
  schema: object;
}

interface WebhookOperation {
  parameters: HeaderParameter[];
  requestBody: { content: Record<string, { schema: { $ref: string }; examples: Record<string, { value: unknown }> }> };
}

interface Document {
  webhooks: Record<string, { post: WebhookOperation }>;
  components: { schemas: Record<string, object> };
}

function headerRecord(request: ReceivedRequest): Record<string, string> {
  return Object.fromEntries(Object.entries(request.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(', ') : (v ?? '')]));
}

/**
 * The real app delivers each event to a real receiver; every request it gets is checked against
 * the OpenAPI document the app serves, with a JSON Schema validator (draft 2020-12, OpenAPI 3.1's):
 * the body against the webhook's body schema, every header against its parameter.
 */
describe('event schemas: what a receiver gets is what the served OpenAPI document says', () => {
  let t: TestApp;
  let receiver: Receiver;
  let owner: Session;
  let visitor: Session;
  let cardId: string;
  let plain: { id: string; secret: string };
  let coalescing: { id: string; secret: string };
  let doc: Document;
  const ajv = new Ajv2020({ allErrors: true });
  addFormats.default(ajv);

  beforeAll(async () => {
    t = await buildTestApp();
    receiver = await startReceiver();
    owner = await signUp(t.app, uniqueUsername('owner'));
    visitor = await signUp(t.app, uniqueUsername('visitor'));
    cardId = await createCard(t.app, owner, 'Main card');
    plain = await createEndpoint(t.app, owner, `${receiver.origin}/plain`);
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/webhooks',
      headers: owner.auth,
      payload: { url: `${receiver.origin}/coalesced`, events: ['card.viewed'], coalesceSeconds: 1 },
    });
    expect(res.statusCode).toBe(201);
    coalescing = res.json();
    const served = await t.app.inject({ method: 'GET', url: '/docs/json' });
    expect(served.statusCode).toBe(200);
    doc = served.json();
  });
  afterAll(async () => {
    await t?.close();
    await receiver?.close();
  });

  const operation = (name: string) => {
    const webhook = doc.webhooks[name];
    if (!webhook) throw new Error(`the document has no webhook ${name}`);
    return webhook.post;
  };

  /** The webhook's body schema, as the document gives it (a reference into components.schemas). */
  function bodyValidator(name: string): ValidateFunction {
    const { $ref } = operation(name).requestBody.content['application/json']!.schema;
    const schema = doc.components.schemas[$ref.replace(/^#\/components\/schemas\//, '')];
    if (!schema) throw new Error(`${name}: ${$ref} is not in components.schemas`);
    return ajv.compile(schema);
  }

  /** Problems of `request` against the webhook `name` of the document; none when it matches. */
  function problemsOf(request: ReceivedRequest, name: string): string[] {
    const problems: string[] = [];
    const { parameters, requestBody } = operation(name);
    const headers = headerRecord(request);

    const mediaTypes = Object.keys(requestBody.content);
    if (!mediaTypes.includes(headers['content-type'] ?? '')) problems.push(`content-type ${headers['content-type']} is not ${mediaTypes}`);
    const validateBody = bodyValidator(name);
    if (!validateBody(JSON.parse(request.body))) problems.push(`body: ${ajv.errorsText(validateBody.errors)}`);

    for (const parameter of parameters) {
      const value = headers[parameter.name];
      if (value === undefined) {
        if (parameter.required) problems.push(`header ${parameter.name} missing`);
        continue;
      }
      const validateHeader = ajv.compile(parameter.schema);
      if (!validateHeader(value)) problems.push(`header ${parameter.name}: ${value} ${ajv.errorsText(validateHeader.errors)}`);
    }
    const documented = new Set(['content-type', ...parameters.map((parameter) => parameter.name)]);
    for (const name of Object.keys(headers)) {
      if (!documented.has(name) && !TRANSPORT_HEADERS.has(name)) problems.push(`header ${name} is not documented`);
    }
    return problems;
  }

  /** The one request `path` got with `type` in x-devcard-event, once it arrives. */
  const arrival = (path: string, type: string) =>
    waitFor(() => receiver.at(path).find((request) => request.headers['x-devcard-event'] === type), { what: `${type} at ${path}` });

  /** Checks a request against its webhook and that its signatures verify with the endpoint's secret. */
  function expectDocumented(request: ReceivedRequest, name: string, secret: string): void {
    expect(problemsOf(request, name), `${name} at ${request.path}`).toEqual([]);
    expect(() => new Webhook(secret).verify(request.body, headerRecord(request))).not.toThrow();
    expect(request.headers['webhook-id']).toBe(request.headers['x-devcard-delivery']);
  }

  it('card.viewed, plain and coalesced, contact.saved and webhook.test arrive as documented', async () => {
    // Two views of the card (one signed in, one anonymous) and one of the profile.
    for (const [url, viewer] of [
      [`/api/u/card/${cardId}?source=nfc`, visitor],
      [`/api/u/${owner.username}/card/${cardId}`, undefined],
      [`/api/u/${owner.username}?source=qr`, undefined],
    ] as const) {
      expect((await t.app.inject({ method: 'GET', url, headers: viewer?.auth })).statusCode).toBe(200);
    }
    expect((await t.app.inject({ method: 'POST', url: `/api/cards/${cardId}/save`, headers: visitor.auth })).statusCode).toBe(201);
    expect((await t.app.inject({ method: 'POST', url: `/api/webhooks/${plain.id}/test`, headers: owner.auth })).statusCode).toBe(202);

    const viewed = await arrival('/plain', 'card.viewed');
    expectDocumented(viewed, 'card.viewed', plain.secret);
    expectDocumented(await arrival('/plain', 'contact.saved'), 'contact.saved', plain.secret);
    expectDocumented(await arrival('/plain', 'webhook.test'), 'webhook.test', plain.secret);

    // The coalescing endpoint gets the three views in a delivery per card (and one for the profile)
    // as each window closes: two deliveries, or three on a machine slow enough to close one between views.
    const countOf = (request: ReceivedRequest) => (JSON.parse(request.body) as { data: { count: number } }).data.count;
    const viewsIn = (requests: ReceivedRequest[]) => requests.reduce((views, request) => views + countOf(request), 0);
    const coalesced = await waitFor(() => (viewsIn(receiver.at('/coalesced')) === 3 ? receiver.at('/coalesced') : undefined), {
      what: 'the three views in coalesced deliveries',
    });
    for (const request of coalesced) expectDocumented(request, COALESCED, coalescing.secret);

    // The two forms of card.viewed are told apart by their schemas.
    expect(problemsOf(viewed, COALESCED)).toEqual([expect.stringMatching(/^body: /)]);
    expect(problemsOf(coalesced[0]!, 'card.viewed')).toEqual([expect.stringMatching(/^body: /)]);

    // Every request /plain got was one of these: three views, a save and a test.
    await waitFor(() => receiver.at('/plain').length >= 5, { what: 'all five plain deliveries' });
    for (const request of receiver.at('/plain')) {
      expectDocumented(request, String(request.headers['x-devcard-event']), plain.secret);
    }
    expect(
      receiver
        .at('/plain')
        .map((request) => request.headers['x-devcard-event'])
        .sort(),
    ).toEqual(['card.viewed', 'card.viewed', 'card.viewed', 'contact.saved', 'webhook.test']);
  });

  it('tells a request that strays from the document', async () => {
    const request = await arrival('/plain', 'contact.saved');
    const body = JSON.parse(request.body) as { data: Record<string, unknown> };
    const changed = (patch: Partial<ReceivedRequest>) => ({ ...request, ...patch });

    expect(problemsOf(changed({ body: JSON.stringify({ ...body, data: { ...body.data, savedBy: null } }) }), 'contact.saved')).toEqual([
      expect.stringMatching(/^body: .*savedBy/),
    ]);
    expect(problemsOf(request, 'webhook.test')).toEqual(
      expect.arrayContaining([expect.stringMatching(/^body: /), expect.stringMatching(/^header x-devcard-event: contact.saved/)]),
    );
    const { 'webhook-timestamp': _dropped, ...withoutTimestamp } = request.headers;
    expect(problemsOf(changed({ headers: withoutTimestamp }), 'contact.saved')).toEqual(['header webhook-timestamp missing']);
    expect(problemsOf(changed({ headers: { ...request.headers, 'webhook-signature': 'v1,not-base64' } }), 'contact.saved')).toEqual([
      expect.stringMatching(/^header webhook-signature: /),
    ]);
    expect(problemsOf(changed({ headers: { ...request.headers, 'x-extra': '1' } }), 'contact.saved')).toEqual([
      'header x-extra is not documented',
    ]);
  });

  it("documents examples that the document's own schemas accept", () => {
    for (const name of Object.keys(doc.webhooks)) {
      const validate = bodyValidator(name);
      for (const { value } of Object.values(operation(name).requestBody.content['application/json']!.examples)) {
        expect(validate(value), `${name}: ${ajv.errorsText(validate.errors)}`).toBe(true);
      }
    }
  });
});
