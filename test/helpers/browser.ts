import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { chromium, type Browser, type Page } from 'playwright-core';
import { beforeEach } from 'vitest';

/** Debian's `chromium` package; `.ci/run` installs it. playwright-core never downloads a browser. */
export const CHROMIUM_PATH = '/usr/bin/chromium';
export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'];

/** Headless Chromium. Without it the browser tests fail (not skip): CI installs it, so its absence is a broken setup. */
export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(`No Chromium at ${CHROMIUM_PATH}: install Debian's chromium package (bash .ci/run does it)`);
  }
  return chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, args: CHROMIUM_ARGS });
}

/**
 * What a page reports as wrong while a test drives it: uncaught exceptions and console errors,
 * which include every Content-Security-Policy and Trusted Types violation. An HTTP error answer
 * also logs a console error in Chromium; those are the API speaking, checked by the tests
 * themselves, so they are left out.
 */
export function collectPageProblems(page: Page): string[] {
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(`uncaught: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error' && !message.text().startsWith('Failed to load resource: the server responded with a status of')) {
      problems.push(`console: ${message.text()}`);
    }
  });
  return problems;
}

export interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: Array<{ target: unknown[] }>;
}

const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

/**
 * axe-core's WCAG 2.1 A and AA checks on the page as it is now. Evaluated through the DevTools
 * protocol, which the page's CSP does not govern, so the page keeps its strict policy.
 */
export async function accessibilityViolations(page: Page): Promise<AxeViolation[]> {
  await page.evaluate(axeSource);
  return page.evaluate(async () => {
    // Runs in the page (no DOM types in this project's TypeScript settings).
    const { axe, document } = globalThis as unknown as {
      axe: { run(context: unknown, options: unknown): Promise<{ violations: AxeViolation[] }> };
      document: unknown;
    };
    const result = await axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } });
    return result.violations.map(({ id, impact, help, nodes }) => ({ id, impact, help, nodes: nodes.map(({ target }) => ({ target })) }));
  });
}

/**
 * For a describe whose steps share one page: after a failed step the rest are skipped, since
 * they would only time out one by one. Call it in the describe's body.
 */
export function skipStepsAfterAFailure(): void {
  let failedStep = false;
  beforeEach(({ skip, onTestFailed }) => {
    if (failedStep) skip();
    onTestFailed(() => {
      failedStep = true;
    });
  });
}
