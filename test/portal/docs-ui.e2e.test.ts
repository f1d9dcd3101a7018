import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp, type TestApp } from '../helpers/app.ts';
import { collectPageProblems, launchChromium } from '../helpers/browser.ts';

/** The OpenAPI UI under its Content-Security-Policy, in headless Chromium: it must still work. */
describe('the documentation UI at /docs in a browser', { timeout: 60_000 }, () => {
  let t: TestApp;
  let browser: Browser;
  let origin: string;

  beforeAll(async () => {
    t = await buildTestApp();
    origin = await t.app.listen({ port: 0, host: '127.0.0.1' });
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await t?.close();
  });

  it('renders every documented operation with no policy violation or script error', async () => {
    const page = await browser.newPage();
    const problems = collectPageProblems(page);
    const response = await page.goto(`${origin}/docs`);
    expect(response?.headers()['content-security-policy']).toMatch(/script-src 'self'/);

    type Operations = Record<string, Record<string, unknown>>;
    const spec = (await (await fetch(`${origin}/docs/json`)).json()) as { paths: Operations; webhooks: Operations };
    // The routes, and the requests the service sends (OpenAPI 3.1 `webhooks`), each an operation block.
    const operations = [spec.paths, spec.webhooks]
      .flatMap((items) => Object.values(items))
      .reduce((n, methods) => n + Object.keys(methods).length, 0);
    await page.waitForSelector('.opblock', { timeout: 20_000 });
    await expect.poll(() => page.locator('.opblock').count(), { timeout: 20_000 }).toBe(operations);
    expect(problems).toEqual([]);
  });
});
