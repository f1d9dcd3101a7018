/**
 * The receiver self-test (`POST /api/webhooks/:id/verify-receiver`): three probes sent now, on
 * the same path as real deliveries (the WebhookSender: URL policy at connect time, timeout, no
 * redirects, pinned address), signed with the endpoint's keys. They are a synchronous
 * diagnostic, not deliveries: no row, no retry, no effect on the failure count.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { Database } from '../db/database.ts';
import { AppError } from '../errors.ts';
import type { EndpointKeyCache } from './delivery/endpoint-keys.ts';
import { findOwnEndpoint } from './endpoints/find-own-endpoint.ts';
import { buildEnvelope, renderBody } from './envelope.ts';
import { TEST_EVENT_TYPE } from './events.ts';
import type { AttemptResult, WebhookSender } from './delivery/sender.ts';
import { DEFAULT_TOLERANCE_SECONDS, signWithKeys } from './signing.ts';

/** The stale probe's timestamp is this old: twice the usual 5-minute tolerance. */
export const STALE_PROBE_AGE_SECONDS = 600;

export const RECEIVER_CHECK_CASES = ['valid', 'bad_signature', 'stale_timestamp'] as const;
export type ReceiverCheckCaseName = (typeof RECEIVER_CHECK_CASES)[number];

export const RECEIVER_VERDICTS = ['ok', 'does_not_check_signatures', 'does_not_check_timestamps', 'rejects_valid', 'unreachable'] as const;
export type ReceiverVerdict = (typeof RECEIVER_VERDICTS)[number];

export const receiverCheckCaseSchema = z.object({
  name: z.enum(RECEIVER_CHECK_CASES),
  /** The receiver's HTTP status; null when no response came (refused, timeout, not allowed). */
  status: z.int().nullable(),
  /** The receiver answered 2xx. */
  accepted: z.boolean(),
  error: z.string().optional(),
});
export type ReceiverCheckCase = z.infer<typeof receiverCheckCaseSchema>;

export const receiverCheckSchema = z.object({
  cases: z.array(receiverCheckCaseSchema),
  verdict: z.enum(RECEIVER_VERDICTS),
  message: z.string(),
});
export type ReceiverCheckReport = z.infer<typeof receiverCheckSchema>;

const isRejection = (status: number | null) => status !== null && status >= 400 && status < 500;

/** Pure: the three cases → a verdict and a sentence a user can act on. */
export function judgeReceiver(cases: readonly ReceiverCheckCase[]): { verdict: ReceiverVerdict; message: string } {
  const byName = (name: ReceiverCheckCaseName) => cases.find((c) => c.name === name);
  const valid = byName('valid');
  const badSignature = byName('bad_signature');
  const stale = byName('stale_timestamp');
  if (!valid || valid.status === null) {
    return { verdict: 'unreachable', message: `Your receiver could not be reached: ${valid?.error ?? 'no response'}.` };
  }
  if (!valid.accepted) {
    return {
      verdict: 'rejects_valid',
      message:
        `Your receiver rejected a correctly signed request (HTTP ${valid.status}). Check that it verifies the raw body ` +
        "with this endpoint's current secret and answers 2xx.",
    };
  }
  if (badSignature?.accepted) {
    return {
      verdict: 'does_not_check_signatures',
      message:
        'Your receiver does not check signatures: it accepted a request with a wrong signature. Anyone who knows its ' +
        'URL can send it fake events; verify webhook-signature against the raw body and answer 4xx when it does not match.',
    };
  }
  if (stale?.accepted) {
    return {
      verdict: 'does_not_check_timestamps',
      message:
        `Your receiver checks signatures but not timestamps: it accepted a correctly signed request ${STALE_PROBE_AGE_SECONDS / 60} ` +
        `minutes old, so a captured request can be replayed. Reject a webhook-timestamp more than ${DEFAULT_TOLERANCE_SECONDS / 60} minutes from now.`,
    };
  }
  const odd = [badSignature, stale].filter((c) => c && !isRejection(c.status)).map((c) => `${c!.name}: ${c!.status ?? c!.error}`);
  return {
    verdict: 'ok',
    message:
      'Your receiver accepts a correctly signed request and rejects a wrong signature and a stale timestamp.' +
      (odd.length > 0 ? ` A rejection is best answered with a 4xx (${odd.join('; ')}).` : ''),
  };
}

export interface ReceiverCheckDeps {
  db: Database;
  keys: EndpointKeyCache;
  sender: Pick<WebhookSender, 'send'>;
}

export class ReceiverCheck {
  readonly #deps: ReceiverCheckDeps;

  constructor(deps: ReceiverCheckDeps) {
    this.#deps = deps;
  }

  /** Sends the three probes at once and judges the answers. 404 unless the endpoint is the user's; 409 when it is disabled. */
  async run(userId: string, endpointId: string): Promise<ReceiverCheckReport> {
    const endpoint = await findOwnEndpoint(this.#deps.db.prisma, userId, endpointId, {
      id: true,
      url: true,
      isActive: true,
      secretEncrypted: true,
      previousSecretEncrypted: true,
      previousSecretExpiresAt: true,
    });
    if (!endpoint.isActive) throw new AppError('ENDPOINT_DISABLED');

    const keys = this.#deps.keys.keysFor({ ...endpoint, endpointId: endpoint.id });
    const now = Math.floor(Date.now() / 1000);
    const probes: Record<ReceiverCheckCaseName, { keys: readonly Buffer[]; timestamp: number }> = {
      valid: { keys, timestamp: now },
      // A key nobody has: both signature headers are well-formed and wrong.
      bad_signature: { keys: [randomBytes(32)], timestamp: now },
      stale_timestamp: { keys, timestamp: now - STALE_PROBE_AGE_SECONDS },
    };
    const cases = await Promise.all(
      RECEIVER_CHECK_CASES.map(async (name) => {
        const result = await this.#probe(endpoint.url, endpoint.id, probes[name]);
        return toCase(name, result);
      }),
    );
    return { cases, ...judgeReceiver(cases) };
  }

  /** One `webhook.test` request with its own webhook-id, so a receiver that de-duplicates sees three events. */
  #probe(url: string, endpointId: string, probe: { keys: readonly Buffer[]; timestamp: number }): Promise<AttemptResult> {
    const probeId = randomUUID();
    const envelope = buildEnvelope(randomUUID(), TEST_EVENT_TYPE, { endpointId }, new Date(probe.timestamp * 1000));
    const body = renderBody(envelope.id, envelope.type, envelope);
    const signature = signWithKeys(probe.keys, { webhookId: probeId, timestamp: probe.timestamp, body });
    return this.#deps.sender.send({
      endpointId,
      url,
      body,
      headers: { ...signature, 'x-devcard-event': TEST_EVENT_TYPE, 'x-devcard-delivery': probeId },
    });
  }
}

function toCase(name: ReceiverCheckCaseName, result: AttemptResult): ReceiverCheckCase {
  return {
    name,
    status: result.statusCode ?? null,
    accepted: result.ok,
    ...(result.error !== undefined && { error: result.error }),
  };
}
