import type { AddressInfo } from 'node:net';
import type { Browser, Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp, type TestApp } from '../helpers/app.ts';
import { accessibilityViolations, collectPageProblems, launchChromium, skipStepsAfterAFailure } from '../helpers/browser.ts';
import { createCard } from '../helpers/cards.ts';
import { signUp, TEST_PASSWORD, uniqueUsername, type Session } from '../helpers/users.ts';
import { waitFor } from '../helpers/wait.ts';

/**
 * The portal's endpoint form and summary for an endpoint's cards (`cardIds`) and rate limit
 * (`maxPerSecond`), in a real headless Chromium against a real app. The steps share one page, in order.
 */
describe('portal: cards and rate limit of an endpoint (headless Chromium)', () => {
  let t: TestApp;
  let browser: Browser;
  let page: Page;
  let problems: string[];
  let origin: string;
  let owner: Session;
  let sales: string;
  let personal: string;
  let endpointId = '';

  beforeAll(async () => {
    t = await buildTestApp();
    await t.app.listen({ host: '127.0.0.1', port: 0 });
    origin = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
    owner = await signUp(t.app, uniqueUsername('cardsrate'));
    sales = await createCard(t.app, owner, 'Sales');
    personal = await createCard(t.app, owner, 'Personal');
    browser = await launchChromium();
    page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
    page.setDefaultTimeout(20_000);
    problems = collectPageProblems(page);
  });
  afterAll(async () => {
    await browser?.close();
    await t?.close();
  });

  skipStepsAfterAFailure();

  const create = () => page.locator('#create-form');
  const edit = () => page.locator('#edit-form');
  const apiEndpoint = async () => (await t.app.inject({ method: 'GET', url: `/api/webhooks/${endpointId}`, headers: owner.auth })).json();
  const waitForText = (locator: Locator, text: string) =>
    waitFor(async () => ((await locator.textContent()) ?? '').includes(text), { what: `"${text}" in ${locator.toString()}` });
  const expectAccessible = async () => {
    const violations = await accessibilityViolations(page);
    expect(violations, JSON.stringify(violations, null, 2)).toEqual([]);
  };

  it('offers a checkbox per card of the user and a rate field on the create form', async () => {
    await page.goto(`${origin}/portal`);
    const signIn = page.locator('#sign-in-form');
    await signIn.getByLabel('Email or username').fill(owner.username);
    await signIn.getByLabel('Password').fill(TEST_PASSWORD);
    await signIn.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Webhook endpoints' }).waitFor();

    const cards = create().getByRole('group', { name: 'Cards' });
    expect(await cards.getByRole('checkbox').count()).toBe(2);
    expect(await cards.getByLabel('Sales').isChecked()).toBe(false);
    expect(await cards.getByLabel('Personal').isChecked()).toBe(false);
    expect(await create().getByLabel('At most this many requests a second').inputValue()).toBe('');
    await expectAccessible();
  });

  it("shows the API's refusal of a rate next to its field, and stores nothing", async () => {
    await create().getByLabel('URL').fill(`${origin}/nowhere`);
    await create().getByLabel('At most this many requests a second').fill('5000');
    await create().getByRole('button', { name: 'Add endpoint' }).click();
    await waitForText(page.locator('#create-max-per-second-error'), 'Must be at most 1000');
    expect(await create().getByLabel('At most this many requests a second').getAttribute('aria-invalid')).toBe('true');
    expect(await t.db.prisma.webhookEndpoint.count({ where: { userId: owner.id } })).toBe(0);
  });

  it('creates an endpoint for the sales card only, at most 5 requests a second, and says so in its summary', async () => {
    await create().getByRole('group', { name: 'Cards' }).getByLabel('Sales').check();
    await create().getByLabel('At most this many requests a second').fill('5');
    await create().getByRole('button', { name: 'Add endpoint' }).click();
    await page.locator('#secret-value').waitFor();

    endpointId = (await t.db.prisma.webhookEndpoint.findFirstOrThrow({ where: { userId: owner.id } })).id;
    expect(await apiEndpoint()).toMatchObject({ cardIds: [sales], maxPerSecond: 5 });
    await waitForText(page.locator('#detail-cards'), 'Only Sales');
    await waitForText(page.locator('#detail-rate'), 'At most 5 requests a second');
  });

  it('shows them in Settings as stored, and saves other cards and no limit', async () => {
    await page.goto(`${origin}/portal#/endpoints/${endpointId}/settings`);
    await page.locator('#settings-heading').waitFor();
    const cards = edit().getByRole('group', { name: 'Cards' });
    expect(await cards.getByLabel('Sales').isChecked()).toBe(true);
    expect(await cards.getByLabel('Personal').isChecked()).toBe(false);
    expect(await edit().getByLabel('At most this many requests a second').inputValue()).toBe('5');

    await cards.getByLabel('Sales').uncheck();
    await cards.getByLabel('Personal').check();
    await edit().getByLabel('At most this many requests a second').fill('');
    await edit().getByRole('button', { name: 'Save changes' }).click();
    await waitForText(edit().getByRole('status'), 'Changes saved');
    expect(await apiEndpoint()).toMatchObject({ cardIds: [personal], maxPerSecond: null });
    await waitForText(page.locator('#detail-cards'), 'Only Personal');
    await waitForText(page.locator('#detail-rate'), 'None');

    // No card ticked is every card and the profile.
    await cards.getByLabel('Personal').uncheck();
    await edit().getByRole('button', { name: 'Save changes' }).click();
    await waitFor(async () => (await apiEndpoint()).cardIds.length === 0, { what: 'the cards cleared' });
    await waitForText(page.locator('#detail-cards'), 'Every card and your profile');
    await expectAccessible();
  });

  it('reported no script or policy error', () => {
    expect(problems).toEqual([]);
  });
});
