/**
 * The signature debugger of the delivery detail: what one attempt signed, as the worker recorded
 * it when it sent the attempt, and, when the receiver refused it, hints for the usual causes.
 * Pure: an attempt row (and the rotation verdict from secret-overlap.ts) in, the API's view out.
 */
import { z } from 'zod';
import { DEFAULT_TOLERANCE_SECONDS } from './signing.ts';

/** Answers that say "your signature did not check out". */
export const SIGNATURE_REFUSED_CODES: readonly number[] = [401, 403];

export const HINT_CODES = ['RECEIVER_ON_PREVIOUS_SECRET', 'BODY_RESERIALISED', 'SECRET_NOT_DECODED', 'CLOCK_SKEW'] as const;
export type HintCode = (typeof HINT_CODES)[number];

/** The role a signing secret had when the attempt was sent (a later rotation does not rewrite it). */
export const SECRET_VERSIONS = ['current', 'previous'] as const;

export const signatureDebugSchema = z
  .object({
    webhookId: z.string().describe('The webhook-id header: the delivery id'),
    timestamp: z.int().describe('The unix seconds sent in webhook-timestamp'),
    signedContent: z
      .string()
      .describe(
        'What webhook-signature signs, with this attempt\'s id and timestamp: "<webhook-id>.<webhook-timestamp>.<body>", ' +
          'where <body> is the raw body bytes. x-devcard-signature signs the body bytes alone.',
      ),
    bodyBytes: z.int().describe('Length of the body sent, in bytes'),
    bodySha256: z.string().describe('Hex sha256 of the body bytes sent: compare it with the sha256 of the bytes your receiver verified'),
    secretVersions: z
      .array(z.object({ version: z.enum(SECRET_VERSIONS), fingerprint: z.string() }))
      .describe(
        'The secrets that signed this attempt (one signature each per header), current first, and their fingerprints: ' +
          'the first 8 hex characters of the sha256 of the whole `whsec_…` secret. Never any part of the secret.',
      ),
    receiverDate: z.date().nullable().describe("The Date header of the receiver's answer; null without one"),
    clockSkewSeconds: z
      .int()
      .nullable()
      .describe(
        'receiverDate minus timestamp, in seconds: how far the receiver clock was ahead (+) or behind (−) the timestamp ' +
          'we sent, plus the time the request took and up to a second of rounding; null without receiverDate',
      ),
  })
  .describe(
    'What this attempt signed, recorded when it was sent; null when nothing was signed (or for attempts logged before it was recorded)',
  );
export type SignatureDebug = z.infer<typeof signatureDebugSchema>;

export const signatureHintSchema = z.object({ code: z.enum(HINT_CODES), message: z.string() });
export type SignatureHint = z.infer<typeof signatureHintSchema>;

/** The recorded columns of one attempt row. */
export interface SignatureRecord {
  responseCode: number | null;
  signatureTimestamp: bigint | number | null;
  bodyBytes: number | null;
  bodySha256: string | null;
  /** Fingerprints of the signing secrets, current first. */
  signedWith: readonly string[];
  responseDate: Date | null;
}

/** Null when the attempt recorded nothing signed. */
export function describeSignature(webhookId: string, row: SignatureRecord): SignatureDebug | null {
  if (row.signatureTimestamp === null || row.bodyBytes === null || row.bodySha256 === null) return null;
  const timestamp = Number(row.signatureTimestamp);
  return {
    webhookId,
    timestamp,
    signedContent: `${webhookId}.${timestamp}.<body>`,
    bodyBytes: row.bodyBytes,
    bodySha256: row.bodySha256,
    secretVersions: row.signedWith.map((fingerprint, i) => ({ version: SECRET_VERSIONS[Math.min(i, 1)]!, fingerprint })),
    receiverDate: row.responseDate,
    clockSkewSeconds: row.responseDate === null ? null : Math.round(row.responseDate.getTime() / 1000 - timestamp),
  };
}

export interface HintContext {
  endpointId: string;
  /**
   * Fingerprints of the secrets the receiver appears to still verify with (see
   * secret-overlap.ts); empty when the attempt is not labelled.
   */
  receiverOnSecrets: readonly string[];
}

/**
 * Hints for an attempt: none unless the receiver answered 401 or 403. Then the rotation label
 * first when it applies (the likeliest cause), and the usual causes always, with this attempt's
 * own figures where they were recorded.
 */
export function signatureHints(responseCode: number | null, signature: SignatureDebug | null, context: HintContext): SignatureHint[] {
  if (responseCode === null || !SIGNATURE_REFUSED_CODES.includes(responseCode)) return [];
  const hints: SignatureHint[] = [];
  if (context.receiverOnSecrets.length > 0) {
    const current = signature?.secretVersions[0]?.fingerprint;
    hints.push({
      code: 'RECEIVER_ON_PREVIOUS_SECRET',
      message:
        `Receiver still on previous secret: it accepted requests while they were also signed with secret ` +
        `${context.receiverOnSecrets.join(', ')}, and refuses them since that secret stopped signing. Switch the receiver to ` +
        `the current secret${current ? ` (${current})` : ''}, or sign with the previous one again for a while: ` +
        `POST /api/webhooks/${context.endpointId}/extend-previous-secret {"hours": 24}.`,
    });
  }
  const sent = signature ? `We sent ${signature.bodyBytes} bytes with sha256 ${signature.bodySha256}. ` : '';
  hints.push({
    code: 'BODY_RESERIALISED',
    message:
      `Verify the raw body bytes, before any JSON parsing. ${sent}A body that was parsed and serialised again ` +
      '(JSON middleware, JSON.stringify of the parsed object) rarely has the same bytes, and its signature does not match.',
  });
  hints.push({
    code: 'SECRET_NOT_DECODED',
    message:
      'The HMAC key is not the secret string: strip the `whsec_` prefix and base64-decode the rest; those bytes are the key. ' +
      'Check too that the receiver has the secret whose fingerprint is listed under secretVersions.',
  });
  hints.push({ code: 'CLOCK_SKEW', message: clockSkewMessage(signature) });
  return hints;
}

function clockSkewMessage(signature: SignatureDebug | null): string {
  const tolerance = `${DEFAULT_TOLERANCE_SECONDS / 60} minutes`;
  if (!signature) return `Receivers usually reject a webhook-timestamp more than ${tolerance} away from their own clock.`;
  const { timestamp, receiverDate, clockSkewSeconds } = signature;
  let message =
    `We sent webhook-timestamp ${timestamp} (${new Date(timestamp * 1000).toISOString()}); receivers usually reject one ` +
    `more than ${tolerance} away from their own clock.`;
  if (receiverDate !== null && clockSkewSeconds !== null) {
    const direction = clockSkewSeconds >= 0 ? 'after' : 'before';
    message += ` The receiver's Date header said ${receiverDate.toISOString()}, ${Math.abs(clockSkewSeconds)} s ${direction} it`;
    message +=
      Math.abs(clockSkewSeconds) > DEFAULT_TOLERANCE_SECONDS
        ? ': more than the usual tolerance, so its clock is the likely cause (check NTP on the receiver).'
        : ': within the usual tolerance, so the clock is unlikely to be the cause.';
  }
  return message;
}
