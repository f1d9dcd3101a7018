import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';
import type { Browser, Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../src/db/database.ts';
import { buildTestApp, type TestApp } from '../helpers/app.ts';
import { accessibilityViolations, collectPageProblems, launchChromium, skipStepsAfterAFailure } from '../helpers/browser.ts';
import { startReceiver, type Receiver } from '../helpers/receiver.ts';
import { signUp, TEST_PASSWORD, uniqueUsername, type Session } from '../helpers/users.ts';
import { waitFor } from '../helpers/wait.ts';
import { createEndpoint } from '../helpers/webhook-api.ts';

/**
 * The endpoint's health charts, the list's sparklines and the recover button in a real headless
 * Chromium, against a real app (in-process worker on) with a week of deliveries written at known
 * times, an outage among them, and a real receiver on 127.0.0.1. The charts are checked against
 * what SQL over the read model (the webhook_deliveries and webhook_delivery_attempts views)
 * counts; the recover against what the receiver gets.
 *
 * HEALTH_SCREENSHOT=1 also writes docs/health.png (the README's picture of the charts).
 */

const SCREENSHOT = fileURLToPath(new URL('../../docs/health.png', import.meta.url));
/** The attempt cap (config default): deliveries that reached it are left alone by a recover. */
const MAX_ATTEMPTS = 25;

interface Bucket {
  start: string;
  success: number;
  failed: number;
  cancelled: number;
  pending: number;
  p50: number | null;
  p95: number | null;
}

/**
 * A week of deliveries every five minutes (fewer at night): mostly quick successes (slower by day), a failure or
 * a cancellation now and then, an outage from seven to five hours ago (four slow attempts each,
 * some at the attempt cap), and a few pending ones in the last hour. The ids are UUIDv7 of their
 * creation times, as the engine makes them.
 */
async function seedWeek(db: Database, endpointId: string, userId: string): Promise<void> {
  await db.sql.query(
    `WITH spec AS (
       SELECT n, now() - n * interval '5 minutes' - interval '30 seconds' AS at,
              CASE
                WHEN n BETWEEN 60 AND 84 THEN CASE WHEN n % 9 = 0 THEN 'capped' ELSE 'outage' END
                WHEN n % 43 = 0 THEN 'failed'
                WHEN n % 67 = 0 THEN 'cancelled'
                ELSE 'success'
              END AS kind
       FROM generate_series(13, 7 * 24 * 12 - 2) AS n
       -- Quieter at night.
       WHERE n % 4 <> 1 OR extract(hour FROM now() - n * interval '5 minutes') BETWEEN 8 AND 20
     ),
     d AS (
       SELECT n, at, kind, webhook_uuid7(at) AS id, webhook_uuid7(at) AS event_id,
              CASE kind WHEN 'success' THEN 1 WHEN 'failed' THEN 2 WHEN 'cancelled' THEN 0 WHEN 'outage' THEN 4 ELSE $3::int END AS attempts,
              CASE kind
                WHEN 'success' THEN (70 + 60 * (1 + sin(extract(hour FROM at) * pi() / 12)) + (n * 37) % 40)::int
                WHEN 'failed' THEN 150 + n % 50
                ELSE 4000 + (n * 53) % 6000
              END AS duration_ms
       FROM spec
     ),
     events AS (
       INSERT INTO webhook_events (id, event_type, body, created_at)
       SELECT event_id, 'card.viewed',
              json_build_object('id', event_id, 'type', 'card.viewed', 'timestamp', at,
                                'data', json_build_object('userId', $2::text, 'cardId', NULL, 'viewer', NULL, 'source', 'qr'))::text,
              at
       FROM d
     ),
     logged AS (
       INSERT INTO webhook_delivery_log (endpoint_id, id, event_id, event_type, status, attempts, error, finished_at,
                                         attempt_started_at, attempt_duration_ms, response_code)
       SELECT $1::uuid, id, event_id, 'card.viewed',
              (CASE kind WHEN 'success' THEN 'success' WHEN 'cancelled' THEN 'cancelled' ELSE 'failed' END)::webhook_delivery_status,
              attempts,
              CASE kind WHEN 'success' THEN NULL WHEN 'failed' THEN 'HTTP 500' WHEN 'cancelled' THEN 'endpoint disabled before the attempt'
                        ELSE 'timed out' END,
              CASE WHEN kind = 'cancelled' THEN at + interval '1 second' END,
              CASE WHEN kind <> 'cancelled' THEN at + (attempts - 1) * interval '40 seconds' END,
              CASE WHEN kind <> 'cancelled' THEN duration_ms END,
              CASE kind WHEN 'success' THEN 200 WHEN 'failed' THEN 500 END
       FROM d
     )
     INSERT INTO webhook_earlier_attempts (delivery_id, attempt_number, started_at, duration_ms, response_code, error)
     SELECT d.id, k, d.at + (k - 1) * interval '40 seconds', d.duration_ms / k, CASE WHEN d.kind = 'failed' THEN 500 END,
            CASE WHEN d.kind = 'failed' THEN 'HTTP 500' ELSE 'timed out' END
     FROM d CROSS JOIN LATERAL generate_series(1, d.attempts - 1) AS k`,
    [endpointId, userId, MAX_ATTEMPTS],
  );
  // Pending in the last hour, each retried once, the next attempt an hour away.
  await db.sql.query(
    `WITH p AS (
       SELECT now() - n * interval '9 minutes' AS at, webhook_uuid7(now() - n * interval '9 minutes') AS id, webhook_uuid7() AS event_id
       FROM generate_series(1, 5) AS n
     ),
     events AS (
       INSERT INTO webhook_events (id, event_type, body, created_at)
       SELECT event_id, 'card.viewed', json_build_object('id', event_id, 'type', 'card.viewed', 'timestamp', at)::text, at FROM p
     ),
     queued AS (
       INSERT INTO webhook_queue (endpoint_id, delivery_id, event_id, event_type, attempts, due_at)
       SELECT $1::uuid, id, event_id, 'card.viewed', 1, now() + interval '1 hour' FROM p
     )
     INSERT INTO webhook_earlier_attempts (delivery_id, attempt_number, started_at, duration_ms, response_code, error)
     SELECT id, 1, at, 2500, 503, 'HTTP 503' FROM p`,
    [endpointId],
  );
}

/** Per hour of [from, to), what the read model holds for the endpoint: counts by status, and the attempts' p50/p95. */
async function bucketsBySql(db: Database, endpointId: string, from: string, to: string): Promise<Bucket[]> {
  const counts = await db.sql.query<{ bucket: number; status: keyof Bucket; n: number }>(
    `SELECT floor(extract(epoch FROM d.created_at - $2::timestamptz) / 3600)::int AS bucket, d.status::text AS status, count(*)::int AS n
     FROM webhook_deliveries d
     WHERE d.endpoint_id = $1::uuid AND d.created_at >= $2::timestamptz AND d.created_at < $3::timestamptz
     GROUP BY 1, 2`,
    [endpointId, from, to],
  );
  const latencies = await db.sql.query<{ bucket: number; p50: number; p95: number }>(
    `SELECT floor(extract(epoch FROM a.started_at - $2::timestamptz) / 3600)::int AS bucket,
            percentile_disc(0.5) WITHIN GROUP (ORDER BY a.duration_ms) AS p50,
            percentile_disc(0.95) WITHIN GROUP (ORDER BY a.duration_ms) AS p95
     FROM webhook_delivery_attempts a JOIN webhook_deliveries d ON d.id = a.delivery_id
     WHERE d.endpoint_id = $1::uuid AND d.created_at >= $2::timestamptz AND d.created_at < $3::timestamptz
       AND a.started_at >= $2::timestamptz AND a.started_at < $3::timestamptz
     GROUP BY 1`,
    [endpointId, from, to],
  );
  const hours = (Date.parse(to) - Date.parse(from)) / 3_600_000;
  const buckets: Bucket[] = Array.from({ length: hours }, (_, i) => ({
    start: new Date(Date.parse(from) + i * 3_600_000).toISOString(),
    success: 0,
    failed: 0,
    cancelled: 0,
    pending: 0,
    p50: null,
    p95: null,
  }));
  for (const row of counts) (buckets[row.bucket] as unknown as Record<string, number>)[row.status] = row.n;
  for (const row of latencies) Object.assign(buckets[row.bucket]!, { p50: row.p50, p95: row.p95 });
  return buckets;
}

/** `date` as a datetime-local field shows it (the browser runs in this process's time zone). */
function localInput(date: Date): string {
  const two = (n: number) => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${two(date.getMonth() + 1)}-${two(date.getDate())}T${two(date.getHours())}:${two(date.getMinutes())}`;
}

/** The hours a chart (or sparkline) drew, from its bars' data attributes. */
function drawnBuckets(svg: Locator): Promise<Bucket[]> {
  return svg.locator('g.bucket').evaluateAll((groups) =>
    groups.map((group) => {
      const data = (group as unknown as { dataset: Record<string, string> }).dataset;
      const latency = (value: string | undefined) => (value ? Number(value) : null);
      return {
        start: data.start!,
        success: Number(data.success),
        failed: Number(data.failed),
        cancelled: Number(data.cancelled),
        pending: Number(data.pending),
        p50: latency(data.p50),
        p95: latency(data.p95),
      };
    }),
  );
}

describe('delivery health and recovery in the portal (headless Chromium)', () => {
  let t: TestApp;
  let receiver: Receiver;
  let browser: Browser;
  let page: Page;
  let problems: string[];
  let origin: string;
  let owner: Session;
  let endpointId: string;
  let otherId: string;

  beforeAll(async () => {
    t = await buildTestApp();
    await t.app.listen({ host: '127.0.0.1', port: 0 });
    origin = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
    receiver = await startReceiver();
    owner = await signUp(t.app, uniqueUsername('health'));
    endpointId = (await createEndpoint(t.app, owner, `${receiver.origin}/hooks`)).id;
    otherId = (await createEndpoint(t.app, owner, `${receiver.origin}/other`)).id;
    await seedWeek(t.db, endpointId, owner.id);
    await seedWeek(t.db, otherId, owner.id);
    browser = await launchChromium();
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    page = await context.newPage();
    page.setDefaultTimeout(20_000);
    problems = collectPageProblems(page);
  });

  skipStepsAfterAFailure();

  afterAll(async () => {
    await browser?.close();
    await t?.close();
    await receiver?.close();
  });

  const chart = (window: '24h' | '7d') => page.locator(`figure.health-chart[data-window="${window}"] svg`);
  const recoverSection = () => page.locator('#recover');
  const waitForText = (locator: Locator, text: string) =>
    waitFor(async () => ((await locator.textContent()) ?? '').includes(text), { what: `"${text}" in ${locator.toString()}` });
  /** What each chart drew, and what SQL counts over the same window. */
  const chartsAndDatabase = async () => {
    const compared = [];
    for (const window of ['24h', '7d'] as const) {
      const svg = chart(window);
      await svg.waitFor();
      const from = (await svg.getAttribute('data-from'))!;
      const to = (await svg.getAttribute('data-to'))!;
      expect(Date.parse(to) - Date.parse(from)).toBe((window === '24h' ? 24 : 168) * 3_600_000);
      compared.push({ window, drawn: await drawnBuckets(svg), database: await bucketsBySql(t.db, endpointId, from, to) });
    }
    return compared;
  };
  const expectChartsMatchDatabase = async () => {
    for (const { window, drawn, database } of await chartsAndDatabase()) expect(drawn, window).toEqual(database);
  };

  it('draws a sparkline of the last 24 hours for each endpoint in the list, as the database counts them', async () => {
    await page.goto(`${origin}/portal`);
    const form = page.locator('#sign-in-form');
    await form.getByLabel('Email or username').fill(owner.username);
    await form.getByLabel('Password').fill(TEST_PASSWORD);
    await form.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Webhook endpoints' }).waitFor();

    for (const id of [endpointId, otherId]) {
      const spark = page.locator(`tr[data-endpoint-id="${id}"] svg.sparkline`);
      await spark.waitFor();
      const drawn = await drawnBuckets(spark);
      expect(drawn).toHaveLength(24);
      const to = new Date(Date.parse(drawn.at(-1)!.start) + 3_600_000).toISOString();
      expect(drawn).toEqual(await bucketsBySql(t.db, id, drawn[0]!.start, to));
      const failed = drawn.reduce((sum, b) => sum + b.failed, 0);
      expect(failed).toBeGreaterThan(10);
      expect(await spark.getAttribute('aria-label')).toMatch(new RegExp(`^Last 24 hours: \\d+ deliveries, ${failed} failed$`));
    }
  });

  it("charts the endpoint's last 24 hours and 7 days per hour, as the database counts them, with each hour's figures in its title", async () => {
    await page.getByRole('link', { name: `${receiver.origin}/hooks` }).click();
    await page.locator('#health-heading').waitFor();
    await expectChartsMatchDatabase();

    // The outage's hours: failures, and a p95 of seconds; a pointer shows them in words.
    const drawn = await drawnBuckets(chart('24h'));
    const worst = drawn.reduce((a, b) => (b.failed > a.failed ? b : a));
    expect(worst.failed).toBeGreaterThanOrEqual(8);
    expect(worst.p95).toBeGreaterThanOrEqual(4000);
    const title = await chart('24h').locator(`g.bucket[data-start="${worst.start}"] > title`).textContent();
    expect(title).toContain(`${worst.success} succeeded, ${worst.failed} failed, ${worst.cancelled} cancelled, ${worst.pending} pending`);
    expect(title).toMatch(/p95 \d+(\.\d)? s$/);
    expect(await chart('24h').getAttribute('aria-label')).toMatch(
      /^Last 24 hours: \d+ succeeded, \d+ failed, \d+ cancelled, 5 pending\. Slowest hour: /,
    );

    if (process.env.HEALTH_SCREENSHOT === '1') {
      mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
      const health = (await page.locator('#health').boundingBox())!;
      await page.screenshot({ path: SCREENSHOT, fullPage: true, clip: { x: 0, y: 0, width: 1280, height: health.y + health.height + 16 } });
    }
    const violations = await accessibilityViolations(page);
    expect(violations, JSON.stringify(violations, null, 2)).toEqual([]);
  });

  it('says at the field what is wrong with a custom window, and sends nothing', async () => {
    const form = recoverSection().locator('form');
    await form.getByLabel('Failed deliveries created').selectOption('custom');
    await form.getByRole('button', { name: 'Send failed deliveries again…' }).click();
    await waitForText(page.locator('#recover-since-error'), 'Must be a date and time');
    expect(await page.getByRole('dialog').isVisible()).toBe(false);

    // From after To: the API refuses it, and says so at To.
    await form.getByLabel('From').fill(localInput(new Date(Date.now() - 2 * 3_600_000)));
    await form.getByLabel(/^To/).fill(localInput(new Date(Date.now() - 3 * 3_600_000)));
    await form.getByRole('button', { name: 'Send failed deliveries again…' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Send again' }).click();
    await waitForText(page.locator('#recover-until-error'), 'Must be after since');
    expect(receiver.requests).toEqual([]);
    const violations = await accessibilityViolations(page);
    expect(violations, JSON.stringify(violations, null, 2)).toEqual([]);
    await form.getByLabel('Failed deliveries created').selectOption('24h');
  });

  it('asks, then sends the failed deliveries of the last 24 hours again, and says how many (and how many were left alone)', async () => {
    // What a recover of the last 24 hours must take: failed, of this endpoint, under the attempt cap.
    const [expected] = await t.db.sql.query<{ ids: string[]; capped: number }>(
      `SELECT coalesce(array_agg(id ORDER BY id) FILTER (WHERE attempts < $2::int), '{}') AS ids,
              count(*) FILTER (WHERE attempts >= $2::int)::int AS capped
       FROM webhook_deliveries
       WHERE endpoint_id = $1::uuid AND status = 'failed' AND created_at >= now() - interval '24 hours'`,
      [endpointId, MAX_ATTEMPTS],
    );
    const { ids, capped } = expected!;
    expect(ids.length).toBeGreaterThan(10);
    expect(capped).toBeGreaterThan(0);

    const form = recoverSection().locator('form');
    await form.getByRole('button', { name: 'Send failed deliveries again…' }).click();
    const dialog = page.getByRole('dialog');
    await waitForText(dialog, `Every delivery to ${receiver.origin}/hooks created in the last 24 hours that failed is sent again`);
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    expect(receiver.requests).toEqual([]);

    await form.getByRole('button', { name: 'Send failed deliveries again…' }).click();
    await dialog.getByRole('button', { name: 'Send again' }).click();
    const status = recoverSection().getByRole('status');
    await waitForText(status, 'queued again, oldest first');
    expect(await status.locator('[data-requeued]').textContent()).toBe(String(ids.length));
    expect(await status.locator('[data-skipped]').textContent()).toBe(String(capped));

    await waitFor(() => receiver.at('/hooks').length >= ids.length, { what: 'the recovered deliveries' });
    expect(receiver.at('/hooks').map((request) => request.headers['webhook-id'])).toEqual(expect.arrayContaining(ids));
    expect(receiver.at('/hooks')).toHaveLength(ids.length);
    expect(receiver.at('/other')).toEqual([]);
  });

  it('charts the recovered deliveries as they are now', async () => {
    await waitFor(
      async () =>
        (await t.db.sql.query(`SELECT 1 FROM webhook_queue WHERE endpoint_id = $1::uuid AND attempts > 1`, [endpointId])).length === 0,
      {
        what: 'the recovered deliveries to finish',
      },
    );
    await page.locator('#tab-link-settings').click();
    await page.locator('#tab-link-deliveries').click();
    // The charts drawn when the recover answered showed them pending; the ones drawn now, delivered.
    await waitFor(
      async () => (await chartsAndDatabase()).every(({ drawn, database }) => JSON.stringify(drawn) === JSON.stringify(database)),
      {
        what: 'the charts to show the deliveries as they are now',
      },
    );
    const day = (await chartsAndDatabase())[0]!.drawn;
    expect(day.reduce((sum, b) => sum + b.failed, 0)).toBeLessThan(10);
    await expectChartsMatchDatabase();
  });

  it('says next to the button that a disabled endpoint cannot recover', async () => {
    const patch = await t.app.inject({
      method: 'PATCH',
      url: `/api/webhooks/${endpointId}`,
      headers: owner.auth,
      payload: { isActive: false },
    });
    expect(patch.statusCode).toBe(200);
    await recoverSection().getByRole('button', { name: 'Send failed deliveries again…' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Send again' }).click();
    await waitForText(recoverSection().getByRole('alert'), 'This endpoint is disabled');
    expect(problems).toEqual([]);
  });
});
