import { el, svg } from './dom.js';

/**
 * Delivery health drawn as inline SVG by the page itself (GET /api/webhooks/:id/health): per
 * hour, the deliveries created by outcome as stacked bars, and below them the median and 95th
 * percentile duration of the attempts as lines; and the same bars as a sparkline for the endpoint
 * list. Each hour carries its figures as data attributes and a title, which a pointer shows.
 */

/** Bottom to top in a bar, and the legend's order. */
export const OUTCOMES = ['success', 'failed', 'cancelled', 'pending'];
const OUTCOME_WORDS = { success: 'succeeded', failed: 'failed', cancelled: 'cancelled', pending: 'pending' };
const HOUR_MS = 3_600_000;

// The chart's coordinate system (its viewBox); it scales to the width of its box.
const WIDTH = 960;
const LEFT = 64;
const RIGHT = WIDTH - 12;
const BARS_TOP = 24;
const BARS_HEIGHT = 150;
const LATENCY_TOP = BARS_TOP + BARS_HEIGHT + 40;
const LATENCY_HEIGHT = 70;
const AXIS_TOP = LATENCY_TOP + LATENCY_HEIGHT + 16;
const HEIGHT = AXIS_TOP + 6;

/** Hours labelled on the time axis: every 3rd of a day, every 24th of a week. */
const LABEL_EVERY = { '24h': 3, '7d': 24 };

const hourFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const dayFormat = new Intl.DateTimeFormat(undefined, { weekday: 'short', day: 'numeric' });
const hourOfDayFormat = new Intl.DateTimeFormat(undefined, { weekday: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });

const total = (bucket) => OUTCOMES.reduce((sum, outcome) => sum + bucket[outcome], 0);
const sumOf = (buckets, outcome) => buckets.reduce((sum, bucket) => sum + bucket[outcome], 0);

/** A round top for an axis at least `value`: 1, 1.2, 1.6, 2, 2.4, 3, 4, 5, 6 or 8 times a power of ten. */
function roundTop(value) {
  if (value <= 1) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  return [1, 1.2, 1.6, 2, 2.4, 3, 4, 5, 6, 8, 10].map((step) => step * power).find((top) => top >= value);
}

/** Deliveries are whole: the count axis tops at an even number, so its middle is whole too. */
function countAxisTop(value) {
  const top = Math.max(2, Math.ceil(roundTop(value)));
  return top % 2 === 0 ? top : top + 1;
}

function duration(ms) {
  if (ms === null) return '—';
  return ms < 1000 ? `${Math.round(ms)} ms` : `${Number((ms / 1000).toFixed(ms < 10_000 ? 1 : 0))} s`;
}

function hourRange(bucket) {
  const start = new Date(bucket.start);
  return `${hourOfDayFormat.format(start)}–${hourFormat.format(new Date(start.getTime() + HOUR_MS))}`;
}

/** What a pointer on an hour shows, in words. */
function bucketTitle(bucket) {
  const counts = OUTCOMES.map((outcome) => `${bucket[outcome]} ${OUTCOME_WORDS[outcome]}`).join(', ');
  const latency = bucket.p50Ms === null ? 'no attempts' : `attempts p50 ${duration(bucket.p50Ms)}, p95 ${duration(bucket.p95Ms)}`;
  return `${hourRange(bucket)}: ${counts}; ${latency}`;
}

/** The chart in a sentence, for assistive technology. */
function summary(caption, buckets) {
  const counts = OUTCOMES.map((outcome) => `${sumOf(buckets, outcome)} ${OUTCOME_WORDS[outcome]}`).join(', ');
  const slowest = buckets.reduce((worst, bucket) => ((bucket.p95Ms ?? -1) > (worst?.p95Ms ?? -1) ? bucket : worst), null);
  const latency = slowest ? ` Slowest hour: ${hourRange(slowest)}, p95 ${duration(slowest.p95Ms)}.` : ' No attempts.';
  return `${caption}: ${counts}.${latency}`;
}

/** Stacked bars of one hour, bottom up, in a box `x`…`x + width` over `baseline` with `scale` units per delivery. */
function bars(bucket, { x, width, baseline, scale }) {
  let below = 0;
  return OUTCOMES.filter((outcome) => bucket[outcome] > 0).map((outcome) => {
    const height = bucket[outcome] * scale;
    below += height;
    return svg('rect', { class: `bar ${outcome}`, x, y: baseline - below, width, height });
  });
}

function dataOf(bucket) {
  return {
    'data-start': bucket.start,
    'data-success': bucket.success,
    'data-failed': bucket.failed,
    'data-cancelled': bucket.cancelled,
    'data-pending': bucket.pending,
    'data-p50': bucket.p50Ms ?? '',
    'data-p95': bucket.p95Ms ?? '',
  };
}

/** One latency line: a segment through each run of hours that had attempts, a dot on each hour. */
function latencyLine(buckets, key, { xOf, yOf }) {
  const runs = [[]];
  buckets.forEach((bucket, i) => {
    if (bucket[key] !== null) runs.at(-1).push([xOf(i).toFixed(1), yOf(bucket[key]).toFixed(1)]);
    else if (runs.at(-1).length > 0) runs.push([]);
  });
  const drawn = runs.filter((run) => run.length > 0);
  return svg(
    'g',
    { class: `latency ${key === 'p50Ms' ? 'p50' : 'p95'}` },
    drawn.map((run) => svg('polyline', { points: run.map((point) => point.join(',')).join(' ') })),
    drawn.flat().map(([cx, cy]) => svg('circle', { cx, cy, r: 2 })),
  );
}

function axisLabel(x, y, text, anchor = 'end') {
  return svg('text', { x, y, 'text-anchor': anchor, class: 'axis-label' }, text);
}

/** The chart of `health` (one window), in a figure captioned `caption`. */
export function healthChart(health, caption) {
  const { buckets } = health;
  const step = (RIGHT - LEFT) / buckets.length;
  const barWidth = Math.max(1, step * 0.75);
  const countTop = countAxisTop(Math.max(...buckets.map(total)));
  const latencyTop = roundTop(Math.max(...buckets.map((bucket) => bucket.p95Ms ?? 0)));
  const baseline = BARS_TOP + BARS_HEIGHT;
  const xOf = (i) => LEFT + (i + 0.5) * step;
  const yOf = (ms) => LATENCY_TOP + LATENCY_HEIGHT - (ms / latencyTop) * LATENCY_HEIGHT;
  const labelEvery = LABEL_EVERY[health.window];
  const format = health.window === '7d' ? dayFormat : hourFormat;

  const hours = buckets.map((bucket, i) =>
    svg(
      'g',
      { class: 'bucket', ...dataOf(bucket) },
      svg('title', {}, bucketTitle(bucket)),
      // The whole column answers the pointer, also over an hour without deliveries.
      svg('rect', { class: 'column', x: LEFT + i * step, y: BARS_TOP, width: step, height: LATENCY_TOP + LATENCY_HEIGHT - BARS_TOP }),
      bars(bucket, { x: LEFT + i * step + (step - barWidth) / 2, width: barWidth, baseline, scale: BARS_HEIGHT / countTop }),
    ),
  );
  const gridlines = [
    [BARS_TOP, baseline],
    [LATENCY_TOP, LATENCY_TOP + LATENCY_HEIGHT],
  ].flatMap(([top, bottom]) =>
    [top, (top + bottom) / 2, bottom].map((y) => svg('line', { class: 'grid', x1: LEFT, x2: RIGHT, y1: y, y2: y })),
  );
  const timeLabels = buckets.flatMap((bucket, i) =>
    i % labelEvery === 0 ? [axisLabel(LEFT + i * step, AXIS_TOP, format.format(new Date(bucket.start)), 'start')] : [],
  );

  return el(
    'figure',
    { class: 'health-chart', 'data-window': health.window },
    el('figcaption', {}, caption),
    svg(
      'svg',
      {
        viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
        role: 'img',
        'aria-label': summary(caption, buckets),
        'data-from': health.from,
        'data-to': health.to,
      },
      gridlines,
      axisLabel(LEFT, BARS_TOP - 10, 'Deliveries per hour', 'start'),
      axisLabel(LEFT - 6, BARS_TOP + 4, String(countTop)),
      axisLabel(LEFT - 6, BARS_TOP + BARS_HEIGHT / 2 + 4, String(countTop / 2)),
      axisLabel(LEFT - 6, baseline + 4, '0'),
      axisLabel(LEFT, LATENCY_TOP - 10, 'Attempt latency, p50 and p95', 'start'),
      axisLabel(LEFT - 6, LATENCY_TOP + 4, duration(latencyTop)),
      axisLabel(LEFT - 6, LATENCY_TOP + LATENCY_HEIGHT / 2 + 4, duration(latencyTop / 2)),
      axisLabel(LEFT - 6, LATENCY_TOP + LATENCY_HEIGHT + 4, '0'),
      hours,
      latencyLine(buckets, 'p95Ms', { xOf, yOf }),
      latencyLine(buckets, 'p50Ms', { xOf, yOf }),
      timeLabels,
    ),
  );
}

/** The legend the charts share. */
export function chartLegend() {
  return el(
    'ul',
    { class: 'chart-legend' },
    OUTCOMES.map((outcome) => el('li', {}, el('span', { class: `swatch ${outcome}` }), outcome)),
    el('li', {}, el('span', { class: 'swatch line p50' }), 'attempt latency p50'),
    el('li', {}, el('span', { class: 'swatch line p95' }), 'p95'),
  );
}

// The sparkline's box: one bar per hour.
const SPARK_BAR = 4;
const SPARK_HEIGHT = 24;

/** The last hours of `health` as small stacked bars, for the endpoint list. */
export function sparkline(health) {
  const { buckets } = health;
  const scale = SPARK_HEIGHT / Math.max(1, ...buckets.map(total));
  const failed = sumOf(buckets, 'failed');
  const all = buckets.reduce((sum, bucket) => sum + total(bucket), 0);
  const label = all === 0 ? 'Last 24 hours: no deliveries' : `Last 24 hours: ${all} deliveries, ${failed} failed`;
  return svg(
    'svg',
    {
      class: 'sparkline',
      viewBox: `0 0 ${buckets.length * SPARK_BAR} ${SPARK_HEIGHT}`,
      width: buckets.length * SPARK_BAR,
      height: SPARK_HEIGHT,
      role: 'img',
      'aria-label': label,
      'data-from': health.from,
    },
    svg('title', {}, label),
    svg('line', { class: 'grid', x1: 0, x2: buckets.length * SPARK_BAR, y1: SPARK_HEIGHT - 0.5, y2: SPARK_HEIGHT - 0.5 }),
    buckets.map((bucket, i) =>
      svg(
        'g',
        { class: 'bucket', ...dataOf(bucket) },
        bars(bucket, { x: i * SPARK_BAR, width: SPARK_BAR - 1, baseline: SPARK_HEIGHT, scale }),
      ),
    ),
  );
}
