import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';
import type { Browser, BrowserContext, Locator, Page } from 'playwright-core';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { buildTestApp, type TestApp } from '../helpers/app.ts';
import { accessibilityViolations, collectPageProblems, launchChromium } from '../helpers/browser.ts';
import { startReceiver, type Receiver } from '../helpers/receiver.ts';
import { signUp, uniqueUsername, type Session } from '../helpers/users.ts';
import { waitFor } from '../helpers/wait.ts';
import { deliveriesOf } from '../helpers/webhook-api.ts';

/**
 * The portal in a real headless Chromium against a real app (embedded store or PostgreSQL, the
 * in-process delivery worker on) and a real receiver on 127.0.0.1 that verifies signatures with
 * the secret the page showed. Each step checks the page and what the API and database became.
 * The steps run in order and share one page, as one person would use the portal.
 *
 * PORTAL_SCREENSHOT=1 also writes docs/portal.png (the README's picture).
 */

const PASSWORD = 'password-123';
const SCREENSHOT = fileURLToPath(new URL('../../docs/portal.png', import.meta.url));
const DESCRIPTION = 'CRM sync (production)';
/** Text that would run script if the page ever treated API data as HTML. */
const HOSTILE_DESCRIPTION = 'CRM <img src=x onerror="document.title=\'pwned\'">';
const HOSTILE_BODY = '<script>document.title="pwned"</script><b onmouseover="alert(1)">accepted</b>';

describe('portal at /portal (headless Chromium)', () => {
  let t: TestApp;
  let receiver: Receiver;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let problems: string[];
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
    owner = await signUp(t.app, uniqueUsername('portal'));
    browser = await launchChromium();
    context = await browser.newContext({ viewport: { width: 1280, height: 900 }, permissions: ['clipboard-read', 'clipboard-write'] });
    page = await context.newPage();
    page.setDefaultTimeout(20_000);
    problems = collectPageProblems(page);
  });

  // The steps share one page: after a failed step the rest would only time out one by one.
  let failedStep = false;
  beforeEach(({ skip, onTestFailed }) => {
    if (failedStep) skip();
    onTestFailed(() => {
      failedStep = true;
    });
  });

  afterAll(async () => {
    await browser?.close();
    await t?.close();
    await receiver?.close();
  });

  const create = () => page.locator('#create-form');
  const detail = () => page.locator('#endpoint-detail');
  const status = () => page.locator('#status');
  const endpointRow = () => t.db.prisma.webhookEndpoint.findUniqueOrThrow({ where: { id: endpointId } });
  const focusedId = () => page.evaluate<string>('document.activeElement ? document.activeElement.id : ""');
  /** Waits until `locator` shows `text` (its whole text contains it). */
  const waitForText = (locator: Locator, text: string) =>
    waitFor(async () => ((await locator.textContent()) ?? '').includes(text), { what: `"${text}" in ${locator.toString()}` });

  it('refuses a wrong password, then signs in through the form', async () => {
    await page.goto(`${origin}/portal`);
    const form = page.locator('#sign-in-form');
    await form.getByLabel('Email or username').fill(owner.username);
    await form.getByLabel('Password').fill('not-the-password');
    await form.getByRole('button', { name: 'Sign in' }).click();
    await waitForText(page.getByRole('alert'), 'Wrong login or password');

    await form.getByLabel('Password').fill(PASSWORD);
    await form.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Your endpoints' }).waitFor();
    expect(await page.locator('#signed-in-as').textContent()).toBe(owner.username);
    expect(await page.locator('#endpoints-empty').isVisible()).toBe(true);
    expect(await focusedId()).toBe('endpoints-heading');
    // The token is the API's own: it works against the API.
    const token = await page.evaluate<string | null>("sessionStorage.getItem('devcard-portal.token')");
    const list = await t.app.inject({ method: 'GET', url: '/api/webhooks', headers: { authorization: `Bearer ${token}` } });
    expect(list.statusCode).toBe(200);
  });

  it("shows the API's refusal of a URL and stores nothing", async () => {
    await create().getByLabel('URL').fill('ftp://files.example.com/hooks');
    await create().getByRole('button', { name: 'Add endpoint' }).click();
    await waitForText(page.getByRole('alert'), 'URL not allowed');
    expect(await t.db.prisma.webhookEndpoint.count({ where: { userId: owner.id } })).toBe(0);
  });

  it('creates an endpoint and shows its secret once, with a copy button', async () => {
    await create().getByLabel('URL').fill(`${receiver.origin}/hooks`);
    await create().getByLabel('Description').fill(DESCRIPTION);
    await create().getByLabel('contact.saved').uncheck();
    await create().getByRole('button', { name: 'Add endpoint' }).click();

    const secretValue = page.locator('#secret-value');
    await secretValue.waitFor();
    firstSecret = (await secretValue.textContent()) ?? '';
    expect(firstSecret).toMatch(/^whsec_[A-Za-z0-9+/=]{40,}$/);
    expect(await focusedId()).toBe('secret-heading');

    const stored = await t.db.prisma.webhookEndpoint.findFirstOrThrow({ where: { userId: owner.id } });
    endpointId = stored.id;
    expect(stored).toMatchObject({ url: `${receiver.origin}/hooks`, events: ['card.viewed'], description: DESCRIPTION, isActive: true });

    await page.getByRole('button', { name: 'Copy secret' }).click();
    await waitForText(status(), 'clipboard');
    expect(await page.evaluate<string>('navigator.clipboard.readText()')).toBe(firstSecret);
    receiverSecret = firstSecret;

    await waitForText(page.locator('#endpoint-list'), DESCRIPTION);
    expect(await detail().isVisible()).toBe(true);
  });

  it('does not show the secret again after a reload, and keeps the session', async () => {
    await page.reload();
    await page.getByRole('heading', { name: 'Your endpoints' }).waitFor();
    await waitForText(page.locator('#endpoint-list'), `${receiver.origin}/hooks`);
    expect(await page.locator('#secret-panel').isHidden()).toBe(true);
    expect(await page.content()).not.toContain(firstSecret);
    expect(await page.evaluate<string>('JSON.stringify(sessionStorage)')).not.toContain(firstSecret);
  });

  it('opens the endpoint and edits its events', async () => {
    await page.getByRole('button', { name: `Manage ${receiver.origin}/hooks` }).click();
    await detail().waitFor();
    expect(await focusedId()).toBe('detail-heading');
    const edit = page.locator('#edit-form');
    expect(await edit.getByLabel('card.viewed').isChecked()).toBe(true);
    expect(await edit.getByLabel('contact.saved').isChecked()).toBe(false);

    await edit.getByLabel('contact.saved').check();
    await edit.getByRole('button', { name: 'Save changes' }).click();
    await waitForText(status(), 'Changes saved');
    expect((await endpointRow()).events).toEqual(['card.viewed', 'contact.saved']);
    await waitForText(page.locator('#detail-events'), 'card.viewed, contact.saved');
  });

  it('disables and enables the endpoint', async () => {
    await detail().getByRole('button', { name: 'Disable endpoint' }).click();
    await waitForText(page.locator('#detail-status'), 'Disabled (disabled by user)');
    expect(await endpointRow()).toMatchObject({ isActive: false, disabledReason: 'disabled by user' });
    await waitForText(page.locator('#endpoint-list'), 'Disabled');

    await detail().getByRole('button', { name: 'Enable endpoint' }).click();
    await waitForText(page.locator('#detail-status'), 'Active');
    expect(await endpointRow()).toMatchObject({ isActive: true, disabledReason: null, consecutiveFailures: 0 });
  });

  it('sends a test event and shows the delivery with its attempt; the receiver verified it with the secret shown', async () => {
    await detail().getByRole('button', { name: 'Send test event' }).click();
    await waitForText(status(), 'Test event queued');
    const [delivery] = await waitFor(
      async () => {
        const rows = await deliveriesOf(t, endpointId);
        return rows.length === 1 && rows[0]!.status === 'success' ? rows : null;
      },
      { what: 'the test delivery to succeed' },
    );
    expect(delivery).toMatchObject({ eventType: 'webhook.test', attempts: 1, responseCode: 200 });
    expect(receiver.at('/hooks')).toHaveLength(1);

    const row = page.locator(`#log-rows tr[data-delivery-id="${delivery!.id}"]`);
    await row.locator('[data-attempts="1"]').waitFor();
    await waitForText(row, 'success');
    await row.getByRole('button', { name: /^Show attempts/ }).click();
    const attempts = page.locator(`#attempts-${delivery!.id}`);
    await attempts.locator('tr[data-attempt="1"]').waitFor();
    await waitForText(attempts, 'HTTP 200');
    await waitForText(attempts, receiverBody);
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
    await page.locator(`#attempts-${delivery!.id} tr[data-attempt="2"]`).waitFor();
  });

  it('rotates the secret: the new one is shown once and is the one that signs', async () => {
    await page.getByLabel('Old secret keeps signing for').selectOption('0');
    await detail().getByRole('button', { name: 'Rotate secret' }).click();
    await waitForText(page.locator('#secret-grace'), 'The previous secret no longer signs');
    const secret = (await page.locator('#secret-value').textContent()) ?? '';
    expect(secret).toMatch(/^whsec_/);
    expect(secret).not.toBe(firstSecret);
    expect(await focusedId()).toBe('secret-heading');
    receiverSecret = secret;

    await page.getByRole('button', { name: 'I have stored it, hide it' }).click();
    expect(await page.locator('#secret-panel').isHidden()).toBe(true);
    expect(await page.content()).not.toContain(secret);
    expect(await focusedId()).toBe('rotate-heading');
  });

  it('runs the receiver self-test and shows the verdict', async () => {
    const before = receiver.requests.length;
    await detail().getByRole('button', { name: 'Run self-test' }).click();
    const verdict = page.locator('#self-test-result [data-verdict]');
    await verdict.waitFor();
    // ok: the probe signed with the rotated secret passed the receiver, which holds only the one shown.
    expect(await verdict.getAttribute('data-verdict')).toBe('ok');
    await waitForText(page.locator('#self-test-result'), 'as expected');
    expect(receiver.requests.length - before).toBe(3);
    expect(await page.locator('#self-test-result tbody tr').count()).toBe(3);
  });

  it('passes the WCAG 2.1 A/AA checks of axe-core, and reported no script or policy error', async () => {
    if (process.env.PORTAL_SCREENSHOT === '1') {
      mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
      await page.screenshot({ path: SCREENSHOT, fullPage: true });
    }
    const violations = await accessibilityViolations(page);
    expect(violations, JSON.stringify(violations, null, 2)).toEqual([]);
    expect(problems).toEqual([]);
  });

  it("shows markup in an endpoint's description and in a receiver's answer as text, never as HTML", async () => {
    const edit = page.locator('#edit-form');
    await edit.getByLabel('Description').fill(HOSTILE_DESCRIPTION);
    await edit.getByRole('button', { name: 'Save changes' }).click();
    await waitForText(page.locator('#endpoint-list'), HOSTILE_DESCRIPTION);
    await waitForText(page.locator('#detail-description'), HOSTILE_DESCRIPTION);
    expect((await endpointRow()).description).toBe(HOSTILE_DESCRIPTION);

    receiverBody = HOSTILE_BODY;
    const { deliveryId } = (await t.app.inject({ method: 'POST', url: `/api/webhooks/${endpointId}/test`, headers: owner.auth })).json();
    await detail().getByRole('button', { name: 'Refresh' }).click();
    const row = page.locator(`#log-rows tr[data-delivery-id="${deliveryId}"][data-status="success"]`);
    await row.getByRole('button', { name: /^Show attempts/ }).click();
    await waitForText(page.locator(`#attempts-${deliveryId}`), HOSTILE_BODY);

    expect(await page.locator('main img, main script, main b').count()).toBe(0);
    expect(await page.title()).not.toBe('pwned');
    expect(problems).toEqual([]);
  });

  it('deletes the endpoint after a confirmation', async () => {
    await detail().getByRole('button', { name: 'Delete endpoint…' }).click();
    expect(await focusedId()).toBe('delete-no');
    await detail().getByRole('button', { name: 'Yes, delete it' }).click();
    await waitForText(status(), 'deleted');
    expect(await t.db.prisma.webhookEndpoint.count({ where: { userId: owner.id } })).toBe(0);
    expect(await page.locator('#endpoints-empty').isVisible()).toBe(true);
    expect(await detail().isHidden()).toBe(true);
  });

  it('signs out: the token is gone, a reload asks to sign in again', async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    expect(await page.evaluate<string | null>("sessionStorage.getItem('devcard-portal.token')")).toBeNull();
    await page.reload();
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    expect(await page.locator('#portal-view').isHidden()).toBe(true);
    expect(problems).toEqual([]);
  });
});
