import { describe, expect, it } from 'vitest';
import {
  AUTO_DISABLE_AFTER_CONSECUTIVE_FAILURES,
  MAX_RETRY_AFTER_MS,
  classifyResponse,
  nextRetryDelayMs,
  parseRetryAfter,
  plannedLastAttemptAt,
  retryDelayAfterFailure,
  shouldAutoDisable,
} from '../../src/webhooks/delivery/retry-policy.ts';

const schedule = [30_000, 300_000, 1_800_000];
const noJitter = (): number => 0.5;
const lowest = (): number => 0;
const highest = (): number => 0.999999;

describe('nextRetryDelayMs', () => {
  it('follows the schedule after attempts 1..n and stops after 1 + n attempts', () => {
    expect(nextRetryDelayMs(1, schedule, noJitter)).toBe(30_000);
    expect(nextRetryDelayMs(2, schedule, noJitter)).toBe(300_000);
    expect(nextRetryDelayMs(3, schedule, noJitter)).toBe(1_800_000);
    expect(nextRetryDelayMs(4, schedule, noJitter)).toBeUndefined();
    expect(nextRetryDelayMs(0, schedule, noJitter)).toBeUndefined();
    expect(nextRetryDelayMs(1, [], noJitter)).toBeUndefined();
  });

  it('jitters within ±10% and never goes negative', () => {
    expect(nextRetryDelayMs(1, schedule, lowest)).toBe(27_000);
    expect(nextRetryDelayMs(1, schedule, highest)).toBe(33_000);
    expect(nextRetryDelayMs(1, [0], lowest)).toBe(0);
    for (let i = 0; i < 1000; i++) {
      const delay = nextRetryDelayMs(2, schedule) ?? -1;
      expect(delay).toBeGreaterThanOrEqual(270_000);
      expect(delay).toBeLessThanOrEqual(330_000);
    }
  });
});

describe('plannedLastAttemptAt', () => {
  const next = new Date('2026-11-28T12:00:00.000Z');
  const at = (ms: number) => new Date(next.getTime() + ms);

  it('adds every delay still ahead of the next attempt, none once it is the last', () => {
    expect(plannedLastAttemptAt(next, 0, schedule)).toEqual(at(30_000 + 300_000 + 1_800_000));
    expect(plannedLastAttemptAt(next, 1, schedule)).toEqual(at(300_000 + 1_800_000));
    expect(plannedLastAttemptAt(next, 2, schedule)).toEqual(at(1_800_000));
    expect(plannedLastAttemptAt(next, 3, schedule)).toEqual(next);
    // A redelivery after the schedule ran out: the next attempt is the last.
    expect(plannedLastAttemptAt(next, 7, schedule)).toEqual(next);
    expect(plannedLastAttemptAt(next, 0, [])).toEqual(next);
  });

  it('agrees with the delays the worker applies, without jitter', () => {
    for (let made = 0; made <= schedule.length + 1; made++) {
      let last = next.getTime();
      for (let attempt = made + 1; ; attempt++) {
        const delay = nextRetryDelayMs(attempt, schedule, noJitter);
        if (delay === undefined) break;
        last += delay;
      }
      expect(plannedLastAttemptAt(next, made, schedule).getTime(), `after ${made} attempts`).toBe(last);
    }
  });
});

describe('parseRetryAfter', () => {
  const now = new Date('2026-11-28T12:00:00.000Z');

  it('reads delay-seconds', () => {
    expect(parseRetryAfter('120', now)).toBe(120_000);
    expect(parseRetryAfter(' 0 ', now)).toBe(0);
  });

  it('reads an HTTP-date relative to now, past dates meaning now', () => {
    expect(parseRetryAfter('Sat, 28 Nov 2026 12:02:00 GMT', now)).toBe(120_000);
    expect(parseRetryAfter('Sat, 28 Nov 2026 11:00:00 GMT', now)).toBe(0);
  });

  it('caps at one hour', () => {
    expect(parseRetryAfter('86400', now)).toBe(MAX_RETRY_AFTER_MS);
    expect(parseRetryAfter('Sun, 29 Nov 2026 12:00:00 GMT', now)).toBe(MAX_RETRY_AFTER_MS);
  });

  it('is undefined when absent or invalid', () => {
    for (const value of [undefined, '', '-5', '1.5', 'soon', '2026-11-28']) expect(parseRetryAfter(value, now)).toBeUndefined();
  });
});

describe('classifyResponse', () => {
  it('treats 2xx as success, 410 as gone and everything else, redirects included, as retry', () => {
    expect([200, 201, 204, 299].map(classifyResponse)).toEqual(['success', 'success', 'success', 'success']);
    expect(classifyResponse(410)).toBe('gone');
    expect([100, 301, 302, 304, 400, 404, 429, 500, 503].map(classifyResponse).every((c) => c === 'retry')).toBe(true);
  });
});

describe('retryDelayAfterFailure', () => {
  it('uses the schedule when there is no Retry-After', () => {
    expect(retryDelayAfterFailure({ attemptsMade: 1, scheduleMs: schedule, statusCode: 500, random: noJitter })).toBe(30_000);
  });

  it('waits at least Retry-After on 429 and 503, capped at one hour', () => {
    for (const statusCode of [429, 503]) {
      expect(retryDelayAfterFailure({ attemptsMade: 1, scheduleMs: schedule, statusCode, retryAfterMs: 120_000, random: noJitter })).toBe(
        120_000,
      );
      expect(retryDelayAfterFailure({ attemptsMade: 1, scheduleMs: schedule, statusCode, retryAfterMs: 1_000, random: noJitter })).toBe(
        30_000,
      );
      expect(
        retryDelayAfterFailure({
          attemptsMade: 1,
          scheduleMs: schedule,
          statusCode,
          retryAfterMs: 10 * MAX_RETRY_AFTER_MS,
          random: noJitter,
        }),
      ).toBe(MAX_RETRY_AFTER_MS);
    }
  });

  it('ignores Retry-After on other statuses', () => {
    expect(
      retryDelayAfterFailure({ attemptsMade: 1, scheduleMs: schedule, statusCode: 500, retryAfterMs: 120_000, random: noJitter }),
    ).toBe(30_000);
  });

  it('gives up when the schedule is exhausted, whatever Retry-After says', () => {
    expect(retryDelayAfterFailure({ attemptsMade: 4, scheduleMs: schedule, statusCode: 429, retryAfterMs: 1_000 })).toBeUndefined();
  });
});

describe('shouldAutoDisable', () => {
  it('disables at the threshold of consecutive failed deliveries', () => {
    expect(shouldAutoDisable(AUTO_DISABLE_AFTER_CONSECUTIVE_FAILURES - 1)).toBe(false);
    expect(shouldAutoDisable(AUTO_DISABLE_AFTER_CONSECUTIVE_FAILURES)).toBe(true);
  });
});
