/**
 * Webhook signatures: what the service sends and what a receiver checks.
 *
 * Two schemes over the same `whsec_` secret (docs/receiving-webhooks.md):
 * - Standard Webhooks: `webhook-signature: v1,<base64 HMAC-SHA256(key, "<id>.<ts>.<body>")>`,
 *   space-separated when several secrets are valid (rotation grace period);
 * - `x-devcard-signature: sha256=<hex HMAC-SHA256(key, body)>`, comma-separated.
 *
 * This file depends only on node:crypto so receivers can copy it as is.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export const SECRET_PREFIX = 'whsec_';
export const DEFAULT_TOLERANCE_SECONDS = 300;

const STANDARD_SIGNATURE_VERSION = 'v1';
const DEVCARD_SIGNATURE_PREFIX = 'sha256=';

// A type alias, not an interface, so it stays assignable to plain header records.
export type SignatureHeaders = {
  'webhook-id': string;
  'webhook-timestamp': string;
  'webhook-signature': string;
  'x-devcard-signature': string;
};

export interface SignInput {
  webhookId: string;
  /** Unix seconds of this attempt. */
  timestamp: number;
  body: string | Buffer;
}

export type VerifyResult = { ok: true } | { ok: false; reason: string };

type HeaderBag = Record<string, string | string[] | undefined>;

/** `whsec_<base64>` → HMAC key bytes. The prefix is optional, as in the standardwebhooks libraries. */
export function decodeSecret(secret: string): Buffer {
  const encoded = secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret;
  const key = Buffer.from(encoded, 'base64');
  if (key.length === 0) throw new Error('webhook secret has an empty key');
  return key;
}

/**
 * Signs with keys decoded once by the caller (see decodeSecret): the engine signs every
 * attempt, so base64-decoding the secrets each time would be wasted work.
 */
export function signWithKeys(keys: readonly Buffer[], input: SignInput): SignatureHeaders {
  const timestamp = String(input.timestamp);
  const standard: string[] = [];
  const devcard: string[] = [];
  for (const key of keys) {
    standard.push(`${STANDARD_SIGNATURE_VERSION},${standardDigest(key, input.webhookId, timestamp, input.body)}`);
    devcard.push(`${DEVCARD_SIGNATURE_PREFIX}${devcardDigest(key, input.body)}`);
  }
  return {
    'webhook-id': input.webhookId,
    'webhook-timestamp': timestamp,
    'webhook-signature': standard.join(' '),
    'x-devcard-signature': devcard.join(','),
  };
}

export function signPayload(params: SignInput & { secrets: string[] }): SignatureHeaders {
  return signWithKeys(params.secrets.map(decodeSecret), params);
}

/** Verifies the Standard Webhooks headers: one matching v1 signature and a fresh timestamp. */
export function verifyWebhook(params: {
  secret: string;
  headers: HeaderBag;
  body: string | Buffer;
  toleranceSeconds?: number;
  /** Unix seconds; defaults to the clock. */
  now?: number;
}): VerifyResult {
  const id = singleHeader(params.headers, 'webhook-id');
  const timestampText = singleHeader(params.headers, 'webhook-timestamp');
  const signatures = singleHeader(params.headers, 'webhook-signature');
  if (!id || !timestampText || !signatures) return { ok: false, reason: 'missing webhook headers' };

  if (!/^\d+$/.test(timestampText)) return { ok: false, reason: 'invalid webhook-timestamp' };
  const timestamp = Number(timestampText);
  const now = params.now ?? Math.floor(Date.now() / 1000);
  const tolerance = params.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS;
  if (now - timestamp > tolerance) return { ok: false, reason: 'timestamp too old' };
  if (timestamp - now > tolerance) return { ok: false, reason: 'timestamp too far in the future' };

  const expected = Buffer.from(standardDigest(decodeSecret(params.secret), id, timestampText, params.body));
  for (const entry of signatures.split(' ')) {
    const comma = entry.indexOf(',');
    if (comma < 0 || entry.slice(0, comma) !== STANDARD_SIGNATURE_VERSION) continue;
    if (constantTimeEqual(Buffer.from(entry.slice(comma + 1)), expected)) return { ok: true };
  }
  return { ok: false, reason: 'no matching signature' };
}

/** Verifies `x-devcard-signature` (any of its comma-separated `sha256=` values). */
export function verifyDevcardSignature(secret: string, header: string | string[] | undefined, body: string | Buffer): boolean {
  if (header === undefined) return false;
  const expected = Buffer.from(devcardDigest(decodeSecret(secret), body));
  const values = (Array.isArray(header) ? header.join(',') : header).split(',');
  return values.some((value) => {
    const trimmed = value.trim();
    if (!trimmed.startsWith(DEVCARD_SIGNATURE_PREFIX)) return false;
    return constantTimeEqual(Buffer.from(trimmed.slice(DEVCARD_SIGNATURE_PREFIX.length).toLowerCase()), expected);
  });
}

function standardDigest(key: Buffer, id: string, timestamp: string, body: string | Buffer): string {
  return createHmac('sha256', key).update(`${id}.${timestamp}.`).update(body).digest('base64');
}

function devcardDigest(key: Buffer, body: string | Buffer): string {
  return createHmac('sha256', key).update(body).digest('hex');
}

// timingSafeEqual throws on different lengths; a length mismatch leaks nothing secret.
function constantTimeEqual(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Case-insensitive header lookup; a repeated header is ambiguous, so it counts as missing. */
function singleHeader(headers: HeaderBag, name: string): string | undefined {
  for (const [key, value] of Object.entries(headers)) {
    if (key.toLowerCase() !== name) continue;
    if (Array.isArray(value)) return value.length === 1 ? value[0] : undefined;
    return value;
  }
  return undefined;
}
