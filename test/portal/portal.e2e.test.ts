import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';
import type { Browser, BrowserContext, Locator, Page } from 'playwright-core';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { secretFingerprint } from '../../src/webhooks/secrets.ts';
import { buildTestApp, type TestApp } from '../helpers/app.ts';
import { accessibilityViolations, collectPageProblems, launchChromium, skipStepsAfterAFailure } from '../helpers/browser.ts';
import { startReceiver, type Receiver } from '../helpers/receiver.ts';
import { signUp, uniqueUsername, type Session } from '../helpers/users.ts';
import { waitFor } from '../helpers/wait.ts';
import { createEndpoint, deliveriesOf } from '../helpers/webhook-api.ts';

/**
 * The portal in a real headless Chromium against a real app (embedded store or PostgreSQL, the
 * in-process delivery worker on) and real receivers on 127.0.0.1: one verifies signatures with
 * the secret the page showed, one refuses everything with a clock ten minutes fast. Each step
 * checks the page and what the API and database became. The steps run in order and share one
 * page, as one person would use the portal.
 *
 * PORTAL_SCREENSHOT=1 also writes docs/portal.png (the README's picture): an endpoint's
 * deliveries, with the signature debugger of a refused attempt open.
 */

const PASSWORD = 'password-123';
const SCREENSHOT = fileURLToPath(new URL('../../docs/portal.png', import.meta.url));
const DESCRIPTION = 'CRM sync (production)';
/** Text that would run script if the page ever treated API data as HTML. */
const HOSTILE_DESCRIPTION = 'CRM <img src=x onerror="document.title=\'pwned\'">';
const HOSTILE_BODY = '<script>document.title="pwned"</script><b onmouseover="alert(1)">accepted</b>';
/** How far ahead of ours the refusing receiver's clock runs. */
const AHEAD_SECONDS = 600;

/** The page's globals, for callbacks run in it (no DOM types in this project's TypeScript settings; a cast leaves no code behind). */
type PageGlobals = { getComputedStyle(node: unknown): { whiteSpace: string; lineHeight: string } };

interface ApiAttempt {
  attemptNumber: number;
  responseCode: number | null;
  signature: {
    webhookId: string;
    timestamp: number;
    clockSkewSeconds: number | null;
    secretVersions: Array<{ fingerprint: string }>;
  } | null;
  hints: Array<{ code: string; message: string }>;
}

describe('portal at /portal (headless Chromium)', () => {
  let t: TestApp;
  let receiver: Receiver;
  let refuser: Receiver;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let problems: string[];
  /** Every answer the page got: [status, url]. */
  const responses: Array<[number, string]> = [];
  let origin: string;
  let owner: Session;
  /** The secret the receiver verifies with: the one the page showed last. */
  let receiverSecret = '';
  let receiverBody = '{"received":true}';
  let endpointId = '';
  let firstSecret = '';

  beforeAll(async () => {
    t = await buildTestApp();
    await t.app.listen({ host: '127.0.0.1', port: 0 });
    origin = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
    // Like a careful receiver: standardwebhooks, 5-minute tolerance.
    receiver = await startReceiver((request, res) => {
      try {
        new Webhook(receiverSecret).verify(request.body, request.headers as Record<string, string>);
        res.writeHead(200).end(receiverBody);
      } catch {
        res.writeHead(401).end('bad signature');
      }
    });
    refuser = await startReceiver((_request, res) => {
      res.writeHead(401, { date: new Date(Date.now() + AHEAD_SECONDS * 1000).toUTCString() }).end('invalid signature');
    });
    owner = await signUp(t.app, uniqueUsername('portal'));
    browser = await launchChromium();
    context = await browser.newContext({ viewport: { width: 1280, height: 900 }, permissions: ['clipboard-read', 'clipboard-write'] });
    page = await context.newPage();
    page.setDefaultTimeout(20_000);
    problems = collectPageProblems(page);
    page.on('response', (response) => responses.push([response.status(), response.url()]));
  });

  skipStepsAfterAFailure();

  afterAll(async () => {
    await browser?.close();
    await t?.close();
    await receiver?.close();
    await refuser?.close();
  });

  const create = () => page.locator('#create-form');
  const detail = () => page.locator('#endpoint-view');
  const dialog = () => page.getByRole('dialog');
  const endpointRow = () => t.db.prisma.webhookEndpoint.findUniqueOrThrow({ where: { id: endpointId } });
  const focusedId = () => page.evaluate<string>('document.activeElement ? document.activeElement.id : ""');
  /** The endpoint as the API shows it to its owner. */
  const apiEndpoint = async (id = endpointId) =>
    (await t.app.inject({ method: 'GET', url: `/api/webhooks/${id}`, headers: owner.auth })).json();
  /** Waits until `locator` shows `text` (its whole text contains it). */
  const waitForText = (locator: Locator, text: string) =>
    waitFor(async () => ((await locator.textContent()) ?? '').includes(text), { what: `"${text}" in ${locator.toString()}` });
  const openTab = async (name: string) => {
    await detail().getByRole('navigation', { name: 'Endpoint sections' }).getByRole('link', { name }).click();
    await page.locator('.tab-panel:not([hidden]) h2', { hasText: name === 'Test' ? 'Test your receiver' : name }).waitFor();
  };
  /** `null` or `undefined` in the page's own words, even glued to another (JSON and code may hold a null; the rest never should). */
  const strayNulls = () =>
    page.evaluate<string[]>(`(() => {
      const main = document.querySelector('main').cloneNode(true);
      for (const node of main.querySelectorAll('pre, code')) node.remove();
      return main.textContent.match(/null|undefined/g) ?? [];
    })()`);
  const expectAccessible = async () => {
    const violations = await accessibilityViolations(page);
    expect(violations, JSON.stringify(violations, null, 2)).toEqual([]);
  };

  it('refuses a wrong password next to the form, then signs in through it', async () => {
    await page.goto(`${origin}/portal`);
    const form = page.locator('#sign-in-form');
    await form.getByLabel('Email or username').fill(owner.username);
    await form.getByLabel('Password').fill('not-the-password');
    await form.getByRole('button', { name: 'Sign in' }).click();
    await waitForText(form.getByRole('alert'), 'Wrong login or password');

    await form.getByLabel('Password').fill(PASSWORD);
    await form.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Webhook endpoints' }).waitFor();
    expect(await page.locator('#signed-in-as').textContent()).toBe(owner.username);
    expect(await page.locator('#endpoints-empty').isVisible()).toBe(true);
    expect(await focusedId()).toBe('list-heading');
    // The token is the API's own: it works against the API.
    const token = await page.evaluate<string | null>("sessionStorage.getItem('devcard-portal.token')");
    const list = await t.app.inject({ method: 'GET', url: '/api/webhooks', headers: { authorization: `Bearer ${token}` } });
    expect(list.statusCode).toBe(200);
  });

  it("shows the API's refusal of a URL next to the URL field, never `null`, and stores nothing", async () => {
    await create().getByLabel('URL').fill('ftp://files.example.com/hooks');
    await create().getByRole('button', { name: 'Add endpoint' }).click();
    const urlError = page.locator('#create-url-error');
    await waitForText(urlError, 'URL must use https');
    const text = (await urlError.textContent()) ?? '';
    expect(text).not.toMatch(/null|undefined/);
    // Next to the field: it describes it, marks it invalid, has the focus, and sits right below its hint.
    const url = create().getByLabel('URL');
    expect(await url.getAttribute('aria-invalid')).toBe('true');
    expect(await url.getAttribute('aria-describedby')).toContain('create-url-error');
    expect(await focusedId()).toBe('create-url');
    expect(await page.locator('#create-url-hint + #create-url-error').count()).toBe(1);
    expect(await page.locator('#feedback-main [role="alert"]').textContent()).toBe('');
    expect(await create().getByRole('alert').textContent()).not.toMatch(/null|undefined/);
    expect(await strayNulls()).toEqual([]);
    expect(await t.db.prisma.webhookEndpoint.count({ where: { userId: owner.id } })).toBe(0);
  });

  it("shows an out-of-range grouping window next to its field, in the API's words", async () => {
    const body = { url: `${receiver.origin}/hooks`, events: ['card.viewed'], coalesceSeconds: 5000 };
    const refused = await t.app.inject({ method: 'POST', url: '/api/webhooks', headers: owner.auth, payload: body });
    const apiMessage: string = refused.json().error.details[0].message;
    expect(apiMessage).toContain('3600');

    await create().getByLabel('URL').fill(body.url);
    await create().getByLabel('Group views of a card within (seconds)').fill('5000');
    await create().getByRole('button', { name: 'Add endpoint' }).click();
    const coalesceError = page.locator('#create-coalesce-error');
    await waitForText(coalesceError, apiMessage.slice(1));
    // The URL is fine now: its error is gone.
    expect(await page.locator('#create-url-error').count()).toBe(0);
    expect(await create().getByLabel('URL').getAttribute('aria-invalid')).toBeNull();
    expect(await focusedId()).toBe('create-coalesce');
    expect(await t.db.prisma.webhookEndpoint.count({ where: { userId: owner.id } })).toBe(0);
  });

  it('creates an endpoint with a grouping window and shows its secret once, with a copy button', async () => {
    await create().getByLabel('URL').fill(`${receiver.origin}/hooks`);
    await create().getByLabel('Description').fill(DESCRIPTION);
    await create().getByLabel('contact.saved').uncheck();
    await create().getByLabel('Group views of a card within (seconds)').fill('30');
    await create().getByRole('button', { name: 'Add endpoint' }).click();

    const secretValue = page.locator('#secret-value');
    await secretValue.waitFor();
    firstSecret = (await secretValue.textContent()) ?? '';
    expect(firstSecret).toMatch(/^whsec_[A-Za-z0-9+/=]{40,}$/);
    expect(await focusedId()).toBe('secret-heading');

    const stored = await t.db.prisma.webhookEndpoint.findFirstOrThrow({ where: { userId: owner.id } });
    endpointId = stored.id;
    expect(stored).toMatchObject({ url: `${receiver.origin}/hooks`, events: ['card.viewed'], description: DESCRIPTION, isActive: true });
    expect(await apiEndpoint()).toMatchObject({ coalesceSeconds: 30 });
    expect(page.url()).toBe(`${origin}/portal#/endpoints/${endpointId}/secret`);
    // The section names the secret by the fingerprint the API gives.
    await waitForText(page.locator('#secret-fingerprint'), secretFingerprint(firstSecret));

    await page.getByRole('button', { name: 'Copy secret' }).click();
    await waitForText(page.locator('#tab-secret').getByRole('status').first(), 'clipboard');
    expect(await page.evaluate<string>('navigator.clipboard.readText()')).toBe(firstSecret);
    receiverSecret = firstSecret;
  });

  it('does not show the secret again after a reload, and keeps the session and the view', async () => {
    await page.reload();
    await page.locator('#secret-tab-heading').waitFor();
    expect(await page.locator('#secret-panel').isHidden()).toBe(true);
    expect(await page.content()).not.toContain(firstSecret);
    expect(await page.evaluate<string>('JSON.stringify(sessionStorage)')).not.toContain(firstSecret);
  });

  it('lists the endpoint, its URL on one line with the whole URL in its title, and opens it on its deliveries; back returns to the list', async () => {
    await page.getByRole('navigation', { name: 'Portal' }).getByRole('link', { name: 'Endpoints' }).click();
    const link = page.getByRole('link', { name: `${receiver.origin}/hooks` });
    await link.waitFor();
    expect(await link.getAttribute('title')).toBe(`${receiver.origin}/hooks`);
    expect(await link.evaluate((node) => (globalThis as unknown as PageGlobals).getComputedStyle(node).whiteSpace)).toBe('nowrap');
    await waitForText(page.locator('#endpoint-list'), DESCRIPTION);
    await link.click();
    await page.locator('#log-heading').waitFor();
    expect(await focusedId()).toBe('detail-heading');
    expect(await page.locator('#tab-link-deliveries').getAttribute('aria-current')).toBe('page');
    await page.goBack();
    await page.locator('#list-heading').waitFor();
    await expectAccessible();
    await page.goForward();
    await page.locator('#log-heading').waitFor();
  });

  it('edits the events and the grouping window in Settings', async () => {
    await openTab('Settings');
    const edit = page.locator('#edit-form');
    expect(await edit.getByLabel('card.viewed').isChecked()).toBe(true);
    expect(await edit.getByLabel('contact.saved').isChecked()).toBe(false);
    expect(await edit.getByLabel('Group views of a card within (seconds)').inputValue()).toBe('30');

    await edit.getByLabel('contact.saved').check();
    await edit.getByLabel('Group views of a card within (seconds)').fill('120');
    await edit.getByRole('button', { name: 'Save changes' }).click();
    await waitForText(edit.getByRole('status'), 'Changes saved');
    expect(await apiEndpoint()).toMatchObject({ events: ['card.viewed', 'contact.saved'], coalesceSeconds: 120 });
    await waitForText(page.locator('#detail-events'), 'contact.saved');
    await waitForText(page.locator('#detail-coalesce'), '120 s');

    // Not a number the browser can read: said next to the field, nothing sent.
    await edit.getByLabel('Group views of a card within (seconds)').fill('');
    await edit.getByRole('button', { name: 'Save changes' }).click();
    await waitForText(page.locator('#edit-coalesce-error'), 'Must be a whole number of seconds');
    expect(await apiEndpoint()).toMatchObject({ coalesceSeconds: 120 });
    await edit.getByLabel('Group views of a card within (seconds)').fill('120');
  });

  it('asks before disabling: Cancel and Escape leave the endpoint active, confirming disables it; enabling needs no question', async () => {
    const disable = detail().getByRole('button', { name: 'Disable endpoint…' });
    expect(await disable.getAttribute('class')).toContain('danger');

    await disable.click();
    await dialog().waitFor();
    expect(await dialog().getAttribute('aria-labelledby')).toBe('confirm-title');
    expect(await focusedId()).toBe('confirm-cancel');
    await expectAccessible();
    await dialog().getByRole('button', { name: 'Cancel' }).click();
    await dialog().waitFor({ state: 'hidden' });
    expect(await focusedId()).toBe('toggle-active');
    expect(await endpointRow()).toMatchObject({ isActive: true });

    await page.keyboard.press('Enter');
    await dialog().waitFor();
    await page.keyboard.press('Escape');
    await dialog().waitFor({ state: 'hidden' });
    expect(await endpointRow()).toMatchObject({ isActive: true });

    await disable.click();
    await dialog().getByRole('button', { name: 'Disable endpoint' }).click();
    await waitForText(page.locator('#detail-status'), 'Disabled (disabled by user)');
    expect(await endpointRow()).toMatchObject({ isActive: false, disabledReason: 'disabled by user' });

    await detail().getByRole('button', { name: 'Enable endpoint' }).click();
    await waitForText(page.locator('#detail-status'), 'Active');
    expect(await dialog().isHidden()).toBe(true);
    expect(await endpointRow()).toMatchObject({ isActive: true, disabledReason: null, consecutiveFailures: 0 });
  });

  it('sends a test event and shows the delivery with its attempt; the receiver verified it with the secret shown', async () => {
    await openTab('Test');
    const example = JSON.parse((await page.locator('#test-example').textContent()) ?? '{}');
    expect(example).toMatchObject({ type: 'webhook.test', data: { endpointId } });
    await detail().getByRole('button', { name: 'Send test event' }).click();
    const sent = page.locator('#tab-test').getByRole('status').first();
    await waitForText(sent, 'Test event queued');
    const [delivery] = await waitFor(
      async () => {
        const rows = await deliveriesOf(t, endpointId);
        return rows.length === 1 && rows[0]!.status === 'success' ? rows : null;
      },
      { what: 'the test delivery to succeed' },
    );
    expect(delivery).toMatchObject({ eventType: 'webhook.test', attempts: 1, responseCode: 200 });
    expect(receiver.at('/hooks')).toHaveLength(1);
    expect(JSON.parse(receiver.at('/hooks')[0]!.body)).toMatchObject({ type: example.type, data: example.data });

    await sent.getByRole('link', { name: 'See it in the delivery log' }).click();
    const row = page.locator(`#log-rows tr[data-delivery-id="${delivery!.id}"]`);
    await row.locator('[data-attempts="1"]').waitFor();
    await waitForText(row, 'success');
    await row.getByRole('button', { name: /^Show attempts/ }).click();
    const attempts = page.locator(`#attempts-${delivery!.id}`);
    await attempts.locator('li[data-attempt="1"]').waitFor();
    await waitForText(attempts, 'HTTP 200');
    await waitForText(attempts, receiverBody);
  });

  it('shows dates on one line, with the full date in their title, also in a narrow window', async () => {
    const dates = page.locator('#log-rows time');
    expect(await dates.count()).toBeGreaterThan(0);
    for (const width of [1280, 560]) {
      await page.setViewportSize({ width, height: 900 });
      const boxes = await dates.evaluateAll((nodes) =>
        nodes.map((node) => ({
          lines: node.getClientRects().length,
          height: node.getBoundingClientRect().height,
          lineHeight: parseFloat((globalThis as unknown as PageGlobals).getComputedStyle(node).lineHeight),
          title: node.getAttribute('title') ?? '',
          datetime: node.getAttribute('datetime') ?? '',
        })),
      );
      for (const box of boxes) {
        expect(box.lines, `at ${width}px`).toBe(1);
        expect(box.height, `at ${width}px`).toBeLessThanOrEqual(box.lineHeight + 1);
        expect(box.title).toContain(box.datetime);
      }
    }
    await page.setViewportSize({ width: 1280, height: 900 });
  });

  it('redelivers: the same delivery gets a second attempt, shown in the log', async () => {
    const [delivery] = await deliveriesOf(t, endpointId);
    const row = page.locator(`#log-rows tr[data-delivery-id="${delivery!.id}"]`);
    await row.getByRole('button', { name: /^Redeliver/ }).click();
    await waitFor(
      async () => {
        const [again] = await deliveriesOf(t, endpointId);
        return again?.status === 'success' && again.attemptsLog.length === 2;
      },
      { what: 'the second attempt' },
    );
    expect(receiver.at('/hooks')).toHaveLength(2);
    expect(new Set(receiver.at('/hooks').map((r) => r.headers['webhook-id']))).toEqual(new Set([delivery!.id]));

    await row.locator('[data-attempts="2"]').waitFor();
    await page.locator(`#attempts-${delivery!.id} li[data-attempt="2"]`).waitFor();
  });

  it('asks before rotating the secret; once confirmed, the new one is shown once and is the one that signs', async () => {
    await openTab('Signing secret');
    await page.getByLabel('Old secret keeps signing for').selectOption('0');
    const rotate = detail().getByRole('button', { name: 'Rotate secret…' });
    expect(await rotate.getAttribute('class')).toContain('danger');
    await rotate.click();
    await waitForText(dialog(), 'stops signing at once');
    await dialog().getByRole('button', { name: 'Cancel' }).click();
    expect(await focusedId()).not.toBe('secret-heading');
    expect((await apiEndpoint()).secretFingerprint).toBe(secretFingerprint(firstSecret));

    await rotate.click();
    await dialog().getByRole('button', { name: 'Rotate secret' }).click();
    await waitForText(page.locator('#secret-grace'), 'The previous secret no longer signs');
    const secret = (await page.locator('#secret-value').textContent()) ?? '';
    expect(secret).toMatch(/^whsec_/);
    expect(secret).not.toBe(firstSecret);
    expect(await focusedId()).toBe('secret-heading');
    expect((await apiEndpoint()).secretFingerprint).toBe(secretFingerprint(secret));
    await waitForText(page.locator('#secret-fingerprint'), secretFingerprint(secret));
    receiverSecret = secret;
    await expectAccessible();

    await page.getByRole('button', { name: 'I have stored it, hide it' }).click();
    expect(await page.locator('#secret-panel').isHidden()).toBe(true);
    expect(await page.content()).not.toContain(secret);
    expect(await focusedId()).toBe('rotate-heading');
  });

  it('runs the receiver self-test and shows the verdict', async () => {
    await openTab('Test');
    const before = receiver.requests.length;
    await detail().getByRole('button', { name: 'Run self-test' }).click();
    const verdict = page.locator('#self-test-result [data-verdict]');
    await verdict.waitFor();
    // ok: the probe signed with the rotated secret passed the receiver, which holds only the one shown.
    expect(await verdict.getAttribute('data-verdict')).toBe('ok');
    await waitForText(page.locator('#self-test-result'), 'as expected');
    expect(receiver.requests.length - before).toBe(3);
    expect(await page.locator('#self-test-result tbody tr').count()).toBe(3);
    await expectAccessible();
  });

  it("explains a refused attempt: the API's hints, the signing key's fingerprint, the clock skew and the headers sent", async () => {
    const refusing = await createEndpoint(t.app, owner, `${refuser.origin}/refuses`, ['card.viewed']);
    await page.goto(`${origin}/portal#/endpoints/${refusing.id}/test`);
    await detail().getByRole('button', { name: 'Send test event' }).click();
    await waitForText(page.locator('#tab-test').getByRole('status').first(), 'Test event queued');
    const [delivery] = await waitFor(
      async () => {
        const rows = await deliveriesOf(t, refusing.id);
        return rows[0]?.status === 'failed' ? rows : null;
      },
      { what: 'the refused delivery to fail' },
    );
    const api = (
      await t.app.inject({ method: 'GET', url: `/api/webhooks/${refusing.id}/deliveries/${delivery!.id}`, headers: owner.auth })
    ).json() as { attempts: ApiAttempt[] };
    const last = api.attempts.at(-1)!;
    expect(last.responseCode).toBe(401);
    expect(last.hints.length).toBeGreaterThanOrEqual(3);

    await openTab('Deliveries');
    const row = page.locator(`#log-rows tr[data-delivery-id="${delivery!.id}"]`);
    await waitForText(row, 'failed');
    await row.getByRole('button', { name: /^Show attempts/ }).click();
    const debug = page.locator(`#attempts-${delivery!.id} [data-debugger="${last.attemptNumber}"]`);
    await debug.waitFor();
    // The newest refused attempt has its debugger open; it says what the API says.
    expect(await debug.getAttribute('open')).not.toBeNull();
    for (const hint of last.hints) await waitForText(debug.locator(`[data-hint="${hint.code}"]`), hint.message);
    expect(await debug.locator('[data-fingerprint]').textContent()).toBe(secretFingerprint(refusing.secret));
    expect(Number(await debug.locator('[data-skew]').getAttribute('data-skew'))).toBe(last.signature!.clockSkewSeconds);
    expect(last.signature!.clockSkewSeconds).toBeGreaterThanOrEqual(AHEAD_SECONDS);
    await waitForText(debug.locator('[data-skew]'), `+${last.signature!.clockSkewSeconds} s`);
    // The headers as the receiver got them on that attempt.
    const got = refuser.at('/refuses').at(-1)!;
    expect(await debug.locator('[data-header="webhook-id"] td code').textContent()).toBe(got.headers['webhook-id']);
    expect(await debug.locator('[data-header="webhook-timestamp"] td code').textContent()).toBe(got.headers['webhook-timestamp']);
    expect(await debug.locator('[data-header="x-devcard-event"] td code').textContent()).toBe(got.headers['x-devcard-event']);
    // Earlier refused attempts keep theirs closed, so the page stays short.
    const first = page.locator(`#attempts-${delivery!.id} [data-debugger="1"]`);
    expect(await first.getAttribute('open')).toBeNull();

    // An endpoint without a description, attempts without an error: nothing of it shows as "null".
    expect(await strayNulls()).toEqual([]);

    await debug.scrollIntoViewIfNeeded();
    if (process.env.PORTAL_SCREENSHOT === '1') {
      mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
      await page.screenshot({ path: SCREENSHOT, fullPage: true });
    }
    await expectAccessible();
  });

  it('explains each event once, in plain words, with the example body the API documents, and sends the one it can send', async () => {
    await page.getByRole('navigation', { name: 'Portal' }).getByRole('link', { name: 'Event types' }).click();
    await page.getByRole('heading', { name: 'Event types', level: 1 }).waitFor();
    const catalogue = (await t.app.inject({ method: 'GET', url: '/api/webhooks/event-types', headers: owner.auth })).json() as Array<{
      type: string;
      description: string;
      example: unknown;
    }>;
    for (const { type, description, example } of catalogue) {
      const article = page.locator(`article[data-event-type="${type}"]`);
      expect(JSON.parse((await article.locator('pre').first().textContent()) ?? '')).toEqual(example);
      expect(await article.getByText('cannot send this event on demand').count()).toBe(1);
      // The catalogue's own sentence is for API readers; the page has its own words, once.
      expect(await page.content()).not.toContain(description.slice(0, 60));
    }
    const test = page.locator('article[data-event-type="webhook.test"]');
    expect(JSON.parse((await test.locator('pre').textContent()) ?? '')).toMatchObject({ type: 'webhook.test', data: {} });

    const before = (await deliveriesOf(t, endpointId)).length;
    await test.getByLabel('Send one to').selectOption(endpointId);
    await test.getByRole('button', { name: 'Send test event' }).click();
    await waitForText(test.getByRole('status'), 'Test event queued');
    await waitFor(async () => (await deliveriesOf(t, endpointId)).length === before + 1, { what: 'the sample delivery' });
    expect(await strayNulls()).toEqual([]);
    await expectAccessible();
  });

  it('reported no script or policy error', async () => {
    await page.goto(`${origin}/portal#/endpoints/${endpointId}/settings`);
    await page.locator('#settings-heading').waitFor();
    await expectAccessible();
    expect(problems).toEqual([]);
  });

  it("shows markup in an endpoint's description and in a receiver's answer as text, never as HTML", async () => {
    const edit = page.locator('#edit-form');
    await edit.getByLabel('Description').fill(HOSTILE_DESCRIPTION);
    await edit.getByRole('button', { name: 'Save changes' }).click();
    await waitForText(page.locator('#detail-description'), HOSTILE_DESCRIPTION);
    expect((await endpointRow()).description).toBe(HOSTILE_DESCRIPTION);

    receiverBody = HOSTILE_BODY;
    const { deliveryId } = (await t.app.inject({ method: 'POST', url: `/api/webhooks/${endpointId}/test`, headers: owner.auth })).json();
    await openTab('Deliveries');
    await detail().getByRole('button', { name: 'Refresh' }).click();
    const row = page.locator(`#log-rows tr[data-delivery-id="${deliveryId}"][data-status="success"]`);
    await row.getByRole('button', { name: /^Show attempts/ }).click();
    await waitForText(page.locator(`#attempts-${deliveryId}`), HOSTILE_BODY);

    await page.getByRole('navigation', { name: 'Portal' }).getByRole('link', { name: 'Endpoints' }).click();
    await waitForText(page.locator('#endpoint-list'), HOSTILE_DESCRIPTION);
    expect(await page.locator('main img, main script, main b').count()).toBe(0);
    expect(await page.title()).not.toBe('pwned');
    expect(problems).toEqual([]);
  });

  it('asks before deleting: Cancel keeps the endpoint, confirming deletes it', async () => {
    await page.getByRole('link', { name: `${receiver.origin}/hooks` }).click();
    await openTab('Settings');
    const remove = detail().getByRole('button', { name: 'Delete endpoint…' });
    await remove.click();
    await dialog().getByRole('button', { name: 'Cancel' }).click();
    expect(await t.db.prisma.webhookEndpoint.count({ where: { id: endpointId } })).toBe(1);

    await remove.click();
    await dialog().getByRole('button', { name: 'Delete endpoint' }).click();
    await waitForText(page.locator('#feedback-main'), 'deleted');
    expect(await t.db.prisma.webhookEndpoint.count({ where: { id: endpointId } })).toBe(0);
    expect(await page.locator('#list-view').isVisible()).toBe(true);
    expect(await page.getByRole('link', { name: `${receiver.origin}/hooks` }).count()).toBe(0);
  });

  it('has an icon, so no load asks for a missing /favicon.ico; nothing the page loaded was a 404', async () => {
    // Headless Chromium fetches no icon, so fetch the one a browser would: the declared one, or /favicon.ico.
    const icon = await page.evaluate<string>(
      "(document.querySelector('link[rel~=\"icon\"]') || { href: new URL('/favicon.ico', location.href).href }).href",
    );
    const status = await page.evaluate<number, string>(async (href) => (await fetch(href)).status, icon);
    expect(status, icon).toBe(200);
    expect(responses.filter(([code, url]) => code === 200 && url === icon)).not.toEqual([]);
    expect(responses.filter(([code, url]) => code === 404 && !new URL(url).pathname.startsWith('/api/'))).toEqual([]);
  });

  it('signs out: the token is gone, a reload asks to sign in again', async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    expect(await page.evaluate<string | null>("sessionStorage.getItem('devcard-portal.token')")).toBeNull();
    await page.reload();
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    expect(await page.locator('#list-view').isHidden()).toBe(true);
    expect(problems).toEqual([]);
  });
});
