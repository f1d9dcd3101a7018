import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { AttemptRecord } from '../../src/webhooks/queue/types.ts';
import {
  ERROR_TEXT_LIMIT_BYTES,
  MAX_INT32,
  RESPONSE_DATE_MAX_MS,
  RESPONSE_DATE_MIN_MS,
  UNRECORDABLE_RESULT_ERROR,
  clampMs,
  isRecordableStatus,
  refusedForItsData,
  responseDateFrom,
  storableAttempt,
  storableDate,
  storableText,
  textFromBytes,
  unrecordableAttempt,
} from '../../src/webhooks/delivery/receiver-values.ts';
import { MAX_RETRY_AFTER_MS, parseRetryAfter } from '../../src/webhooks/delivery/retry-policy.ts';

/** What PostgreSQL refuses in a text column or a jsonb string: NUL and lone surrogates. */
function storableInPostgres(text: string): boolean {
  return !text.includes('\u0000') && !/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(text);
}

const record: AttemptRecord = {
  deliveryId: '00000000-0000-4000-8000-000000000001',
  endpointId: '00000000-0000-4000-8000-000000000003',
  coalescedBody: null,
  claimToken: '00000000-0000-4000-8000-000000000002',
  startedAt: new Date('2026-11-30T10:00:00Z'),
  durationMs: 12.4,
  responseCode: 200,
  responseBody: 'ok',
  error: null,
  outcome: 'success',
  delayMs: null,
  signed: null,
  responseDate: new Date('2026-11-30T10:00:01Z'),
};

describe('responseDateFrom', () => {
  it('reads an HTTP-date', () => {
    expect(responseDateFrom('Mon, 30 Nov 2026 10:00:00 GMT')?.toISOString()).toBe('2026-11-30T10:00:00.000Z');
  });

  it('treats dates outside 1970..9999, unparseable, lenient or oversized values as absent', () => {
    for (const value of [
      undefined,
      '',
      'Sat, 01 Jan 10000 00:00:00 GMT',
      '+275760-09-13T00:00:00Z',
      '-271821-04-20T00:00:00Z',
      'Thu, 31 Dec 1969 23:59:59 GMT',
      'Mon, 01 Jan 1900 00:00:00 GMT',
      'not a date',
      '1',
      `Mon, 30 Nov 2026 10:00:00 GMT${' '.repeat(100)}`,
    ]) {
      expect(responseDateFrom(value), String(value)).toBeUndefined();
    }
  });

  it('keeps the bounds themselves', () => {
    expect(storableDate(new Date(RESPONSE_DATE_MIN_MS))).toEqual(new Date(RESPONSE_DATE_MIN_MS));
    expect(storableDate(new Date(RESPONSE_DATE_MAX_MS))).toEqual(new Date(RESPONSE_DATE_MAX_MS));
    expect(storableDate(new Date(RESPONSE_DATE_MAX_MS + 1))).toBeUndefined();
    expect(storableDate(new Date(Number.NaN))).toBeUndefined();
  });
});

describe('isRecordableStatus', () => {
  it('accepts three-digit statuses only', () => {
    for (const code of [100, 200, 410, 599, 600, 999]) expect(isRecordableStatus(code), String(code)).toBe(true);
    for (const code of [0, 99, 1000, -200, 200.5, Number.NaN, 2 ** 40]) expect(isRecordableStatus(code), String(code)).toBe(false);
  });
});

describe('textFromBytes and storableText', () => {
  it('replaces NUL and invalid UTF-8, and never cuts a character in half', () => {
    expect(textFromBytes(Buffer.from('a\u0000b'), 100)).toBe('a\uFFFDb');
    expect(textFromBytes(Buffer.from([0x61, 0xff, 0xfe, 0x62]), 100)).toBe('a\uFFFD\uFFFDb');
    // "é" is two bytes: a limit of 2 keeps "a" and drops the half character.
    expect(textFromBytes(Buffer.from('aé'), 2)).toBe('a');
    expect(storableText('a\uD800b\uDC00', 100)).toBe('a\uFFFDb\uFFFD');
  });

  it('leaves nothing of a character cut at the limit for the next text', () => {
    expect(textFromBytes(Buffer.from('aé'), 2)).toBe('a');
    expect(textFromBytes(Buffer.from('ok'), 100)).toBe('ok');
    expect(textFromBytes(Buffer.from([0xe2, 0x82]), 100)).toBe('');
    expect(textFromBytes(Buffer.from([0xac, 0x61]), 100)).toBe('\uFFFDa');
  });

  it('always gives storable text within the byte limit', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.string({ unit: 'binary', maxLength: 100 }), fc.nat(200), (bytes, text, limit) => {
        for (const out of [textFromBytes(bytes, limit), storableText(text, limit)]) {
          expect(storableInPostgres(out)).toBe(true);
          expect(Buffer.byteLength(out)).toBeLessThanOrEqual(limit);
        }
      }),
    );
  });
});

describe('clampMs', () => {
  it('gives whole milliseconds in the int range', () => {
    expect(clampMs(12.6)).toBe(13);
    expect(clampMs(-5)).toBe(0);
    expect(clampMs(Number.NaN)).toBe(0);
    expect(clampMs(Number.POSITIVE_INFINITY)).toBe(MAX_INT32);
    expect(clampMs(1e20)).toBe(MAX_INT32);
  });
});

describe('storableAttempt', () => {
  it('keeps a sane record as it is, durations rounded', () => {
    expect(storableAttempt(record, 2048)).toEqual({ ...record, durationMs: 12 });
  });

  it('cleans every receiver-derived value', () => {
    const out = storableAttempt(
      {
        ...record,
        durationMs: 1e15,
        responseCode: 1234,
        responseBody: `x\u0000${'y'.repeat(5000)}`,
        delayMs: Number.POSITIVE_INFINITY,
        responseDate: new Date(Date.UTC(10000, 0, 1)),
        outcome: 'retry',
      },
      2048,
    );
    expect(out).toMatchObject({
      durationMs: MAX_INT32,
      responseCode: null,
      error: 'invalid HTTP status 1234',
      delayMs: MAX_INT32,
      responseDate: null,
    });
    expect(Buffer.byteLength(out.responseBody ?? '')).toBe(2048);
    expect(out.responseBody?.startsWith('x\uFFFDy')).toBe(true);
  });

  it('caps and cleans the error text', () => {
    const out = storableAttempt({ ...record, responseCode: null, error: `bad\u0000${'é'.repeat(2000)}` }, 2048);
    expect(storableInPostgres(out.error ?? '')).toBe(true);
    expect(Buffer.byteLength(out.error ?? '')).toBeLessThanOrEqual(ERROR_TEXT_LIMIT_BYTES);
  });
});

describe('unrecordableAttempt', () => {
  it('drops everything the receiver sent and takes the failure outcome', () => {
    expect(unrecordableAttempt(record, { outcome: 'retry', delayMs: 200 })).toEqual({
      ...record,
      responseCode: null,
      responseBody: null,
      responseDate: null,
      error: UNRECORDABLE_RESULT_ERROR,
      outcome: 'retry',
      delayMs: 200,
    });
  });
});

describe('refusedForItsData', () => {
  it('tells a refused value from a failing database by SQLSTATE class', () => {
    for (const code of ['22009', '22P05', '22021', '23502', '54000'])
      expect(refusedForItsData(Object.assign(new Error('x'), { code })), code).toBe(true);
    for (const code of ['40P01', '08006', '57P01', '53300', 'XX000', 'ECONNREFUSED', '22']) {
      expect(refusedForItsData(Object.assign(new Error('x'), { code })), code).toBe(false);
    }
    for (const error of [new Error('no code'), 'text', null, undefined, { code: 22009 }]) expect(refusedForItsData(error)).toBe(false);
  });
});

describe('parseRetryAfter with extreme values', () => {
  const now = new Date('2026-11-30T10:00:00Z');
  it('stays within 0..MAX_RETRY_AFTER_MS', () => {
    expect(parseRetryAfter('9'.repeat(400), now)).toBe(MAX_RETRY_AFTER_MS);
    expect(parseRetryAfter('Sat, 01 Jan 10000 00:00:00 GMT', now)).toBe(MAX_RETRY_AFTER_MS);
    expect(parseRetryAfter('-271821-04-20T00:00:00Z', now)).toBe(0);
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 60 }), (value) => {
        const ms = parseRetryAfter(value, now);
        if (ms !== undefined) expect(ms >= 0 && ms <= MAX_RETRY_AFTER_MS && Number.isInteger(ms)).toBe(true);
      }),
    );
  });
});
