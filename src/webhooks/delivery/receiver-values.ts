/**
 * What a receiver sends, made storable. Every value an attempt takes from a response (status,
 * Date, body, and the timings and delays it drives) passes through here before it reaches SQL:
 * a result row that the database refuses would otherwise fail the batched write it shares with
 * other tenants' results (issue 11). Pure.
 */
import type { AttemptRecord } from '../queue/types.ts';

/**
 * A receiver's Date outside these is treated as absent: it only feeds clock-skew hints, and
 * JavaScript dates reach far beyond what a timestamptz column accepts (year 10000 fails the write).
 */
export const RESPONSE_DATE_MIN_MS = Date.UTC(1970, 0, 1);
export const RESPONSE_DATE_MAX_MS = Date.UTC(9999, 11, 31, 23, 59, 59, 999);
/** An HTTP-date is 29 characters; a longer value is not one, and is not worth parsing. */
const MAX_DATE_TEXT_LENGTH = 64;
/** Statuses are three digits; anything else is recorded as an error, not as a response code. */
export const MIN_STATUS_CODE = 100;
export const MAX_STATUS_CODE = 999;
/** The int columns' bound: durations and delays are clamped to it. */
export const MAX_INT32 = 2_147_483_647;
/** An error text is ours, but may quote what the receiver sent (a parser's complaint). */
export const ERROR_TEXT_LIMIT_BYTES = 1024;

/** The receiver's `Date` header as a date, or undefined when it is absent, unparseable or outside the sane range. */
export function responseDateFrom(value: string | undefined): Date | undefined {
  // Every HTTP-date form names its month; this keeps Date.parse's leniency ("1" is 2001) out.
  if (value === undefined || value.length > MAX_DATE_TEXT_LENGTH || !/[a-z]/i.test(value)) return undefined;
  return storableDate(new Date(Date.parse(value)));
}

/** `date` if it is valid and in the sane range, else undefined. */
export function storableDate(date: Date | null | undefined): Date | undefined {
  if (!date) return undefined;
  const ms = date.getTime();
  return ms >= RESPONSE_DATE_MIN_MS && ms <= RESPONSE_DATE_MAX_MS ? date : undefined;
}

export function isRecordableStatus(code: number): boolean {
  return Number.isInteger(code) && code >= MIN_STATUS_CODE && code <= MAX_STATUS_CODE;
}

/**
 * A prefix of `bytes` as text a PostgreSQL text column accepts, at most `limitBytes` of UTF-8:
 * invalid UTF-8 and NUL become U+FFFD, a character cut in half at the limit is left out.
 */
export function textFromBytes(bytes: Uint8Array, limitBytes: number): string {
  const text = decodePrefix(bytes, limitBytes).replaceAll('\u0000', '\uFFFD');
  // Each replaced NUL or invalid byte takes three bytes as U+FFFD: cut again (nothing left to replace).
  return Buffer.byteLength(text) <= limitBytes ? text : decodePrefix(Buffer.from(text, 'utf8'), limitBytes);
}

/**
 * One decoder for every attempt: making one per call (a native object behind a weak handle) cost
 * more than the decoding, once or twice for every response.
 */
const utf8 = new TextDecoder('utf-8');

function decodePrefix(bytes: Uint8Array, limitBytes: number): string {
  // stream: true holds back a multi-byte character cut in half instead of emitting U+FFFD for it;
  // the final call drops that held-back part, so the shared decoder starts clean for the next one.
  const text = utf8.decode(bytes.subarray(0, limitBytes), { stream: true });
  utf8.decode();
  return text;
}

/** `text` made storable and at most `limitBytes` of UTF-8: lone surrogates and NUL become U+FFFD. */
export function storableText(text: string, limitBytes: number): string {
  // Encoding replaces lone surrogates (which jsonb and text refuse) with U+FFFD.
  return textFromBytes(Buffer.from(text, 'utf8'), limitBytes);
}

/** A duration or delay for an int column: whole milliseconds in 0..MAX_INT32 (NaN is 0). */
export function clampMs(ms: number): number {
  if (Number.isNaN(ms)) return 0;
  return Math.min(MAX_INT32, Math.max(0, Math.round(ms)));
}

/**
 * `record` with every receiver-derived value made storable, whichever sender produced it: an
 * out-of-range status is dropped (the error says so), texts are cleaned and capped, the Date
 * is kept only in range, durations and delays are clamped.
 */
export function storableAttempt(record: AttemptRecord, responseBodyLimitBytes: number): AttemptRecord {
  const statusOk = record.responseCode === null || isRecordableStatus(record.responseCode);
  const error = statusOk ? record.error : `invalid HTTP status ${String(record.responseCode)}`;
  return {
    ...record,
    durationMs: clampMs(record.durationMs),
    responseCode: statusOk ? record.responseCode : null,
    responseBody: record.responseBody === null ? null : storableText(record.responseBody, responseBodyLimitBytes),
    error: error === null ? null : storableText(error, ERROR_TEXT_LIMIT_BYTES),
    delayMs: record.delayMs === null ? null : clampMs(record.delayMs),
    responseDate: storableDate(record.responseDate) ?? null,
  };
}

/**
 * SQLSTATE classes of a statement refused for the values it carries: data exception (22),
 * integrity constraint violation (23), program limit exceeded (54). Any other failure
 * (connection, deadlock, shutdown) is the database's, and says nothing about the row.
 */
const DATA_REFUSAL_CLASSES: ReadonlySet<string> = new Set(['22', '23', '54']);

/** Whether `error` is the database refusing a statement's data rather than failing. */
export function refusedForItsData(error: unknown): boolean {
  if (typeof error !== 'object' || error === null || !('code' in error) || typeof error.code !== 'string') return false;
  return /^[0-9A-Z]{5}$/.test(error.code) && DATA_REFUSAL_CLASSES.has(error.code.slice(0, 2));
}

/** What is recorded when even the storable form of a result is refused: none of the receiver's values. */
export const UNRECORDABLE_RESULT_ERROR = "the receiver's response could not be recorded; counted as a failed attempt";

/** `record` as an error attempt without anything the receiver sent; `outcome` and `delayMs` are the failure's. */
export function unrecordableAttempt(record: AttemptRecord, failure: Pick<AttemptRecord, 'outcome' | 'delayMs'>): AttemptRecord {
  return {
    ...record,
    responseCode: null,
    responseBody: null,
    responseDate: null,
    error: UNRECORDABLE_RESULT_ERROR,
    outcome: failure.outcome,
    delayMs: failure.delayMs === null ? null : clampMs(failure.delayMs),
  };
}
