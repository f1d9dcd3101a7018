import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import openapiTS, { astToString } from 'openapi-typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestApp } from '../helpers/app.ts';
import { buildWebhookTestApp } from '../helpers/webhook-api.ts';

const TSC = createRequire(import.meta.url).resolve('typescript/bin/tsc');

/**
 * What a receiver's code does with types generated from the served document: handle every body
 * by its `type`, read its fields, and be refused what the document rules out (each
 * `@ts-expect-error` must meet an error, so types that allowed anything would fail too).
 */
const RECEIVER_SNIPPET = `
import type { components, operations, webhooks } from './devcard-api.js';

type CardViewed = components['schemas']['CardViewedEvent'];
type CoalescedCardViewed = components['schemas']['CoalescedCardViewedEvent'];
type ContactSaved = webhooks['contact.saved']['post']['requestBody']['content']['application/json'];
type WebhookTest = components['schemas']['WebhookTestEvent'];
type DevCardEvent = CardViewed | CoalescedCardViewed | ContactSaved | WebhookTest;
type SavedHeaders = operations['contactSavedEvent']['parameters']['header'];

export function describeEvent(event: DevCardEvent): string {
  switch (event.type) {
    case 'card.viewed':
      if ('count' in event.data) return event.data.count + ' views, last at ' + event.data.lastViewedAt;
      return 'viewed via ' + event.data.source + ' by ' + (event.data.viewer?.username ?? 'someone');
    case 'contact.saved':
      return 'saved by ' + event.data.savedBy.username;
    case 'webhook.test':
      return 'test for endpoint ' + event.data.endpointId;
  }
}

export function deliveryId(headers: SavedHeaders): string {
  return headers['webhook-id'];
}

export const anonymousProfileView: CardViewed = {
  id: 'e4da3b7f-bbce-4345-9d77-7a1b2c3d4e5f',
  type: 'card.viewed',
  timestamp: '2026-11-28T12:00:00.000Z',
  data: { userId: '8f14e45f-ceea-4e7a-9c1b-2d3f4a5b6c7d', cardId: null, viewer: null, source: 'qr' },
};

// @ts-expect-error email is not a view source
export const badSource: CardViewed['data']['source'] = 'email';

// @ts-expect-error a contact.saved body has data.savedBy
export const noSavedBy: ContactSaved = { id: 'x', type: 'contact.saved', timestamp: 'x', data: { userId: 'x', cardId: 'x' } };

// @ts-expect-error a contact.saved request's x-devcard-event is contact.saved
export const wrongEvent: SavedHeaders['x-devcard-event'] = 'card.viewed';
`;

describe('the served OpenAPI document with a standard client generator', () => {
  let t: TestApp;
  let dir: string;

  beforeAll(async () => {
    t = await buildWebhookTestApp();
    dir = await mkdtemp(path.join(tmpdir(), 'devcard-openapi-'));
  });
  afterAll(async () => {
    await t?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('generates types (openapi-typescript) that a receiver typechecks against (tsc --strict)', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/docs/json' });
    expect(res.statusCode).toBe(200);
    const generated = astToString(await openapiTS(res.json()));
    expect(generated).toContain('export interface webhooks');
    await writeFile(path.join(dir, 'devcard-api.ts'), generated);
    await writeFile(path.join(dir, 'receiver.ts'), RECEIVER_SNIPPET);

    const args = ['--noEmit', '--strict', '--noImplicitReturns', '--target', 'ES2022', '--module', 'NodeNext'];
    const result = await promisify(execFile)(process.execPath, [TSC, ...args, path.join(dir, 'receiver.ts')], { cwd: dir }).then(
      ({ stdout }) => ({ code: 0, stdout }),
      (error: { code: number; stdout: string }) => ({ code: error.code, stdout: error.stdout }),
    );
    expect(result).toEqual({ code: 0, stdout: '' });
  });
});
