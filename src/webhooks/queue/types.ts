/** What an attempt meant for its delivery, as a result row records it (delivery/attempt-outcome.ts decides it). */
export type OutcomeKind = 'success' | 'gone' | 'retry' | 'failed';

/** A delivery claimed for one attempt, with what is needed to send it. */
export interface ClaimedDelivery {
  id: string;
  endpointId: string;
  eventId: string;
  eventType: string;
  /** The exact bytes to sign and send: the event's, or for a coalesced delivery its folded payload rendered (envelope.ts). */
  body: string;
  /** A coalesced delivery's body is its own, so its log row keeps it (the others' is their event's). */
  coalesced: boolean;
  /** Attempts made before this one. */
  attempts: number;
  claimToken: string;
  /** The endpoint's configuration as the claim read it, at `revision` (endpoint-configs.ts decides whether it still holds). */
  revision: number;
  url: string;
  secretEncrypted: string;
  previousSecretEncrypted: string | null;
  previousSecretExpiresAt: Date | null;
}

/** An endpoint's sending configuration as stored now (readEndpoint). */
export interface StoredEndpointConfig {
  revision: number;
  isActive: boolean;
  url: string;
  secretEncrypted: string;
  previousSecretEncrypted: string | null;
  previousSecretExpiresAt: Date | null;
}

export interface ClaimOptions {
  /** At most this many rows (the worker's free global capacity). */
  limit: number;
  leaseMs: number;
  /** Per-endpoint in-flight cap, including what `inFlightByEndpoint` already holds. */
  perEndpointLimit: number;
  /** Attempts this worker has in flight, per endpoint. */
  inFlightByEndpoint: ReadonlyMap<string, number>;
}

export interface ClaimResult {
  deliveries: ClaimedDelivery[];
  /** Due rows of disabled endpoints found on the way; they were cancelled, never sent. */
  cancelled: number;
  /** True when due rows may remain that this claim did not take (capacity, window, other workers). */
  mayHaveMore: boolean;
  /** Set when it left rows of a paced endpoint for want of a turn: the next of those turns comes in this many milliseconds. */
  pacedWaitMs?: number;
}

/** What one attempt signed, as sent: kept on its attempt row for the signature debugger. */
export interface SignedParts {
  /** The unix seconds sent in webhook-timestamp. */
  timestamp: number;
  bodyBytes: number;
  /** Hex sha256 of the body bytes. */
  bodySha256: string;
  /** Fingerprints of the signing secrets, current first (EndpointKeyCache). */
  fingerprints: readonly string[];
}

export interface AttemptRecord {
  deliveryId: string;
  endpointId: string;
  /** Only for a coalesced delivery: the bytes it sent, kept on its log row when it finishes. */
  coalescedBody: string | null;
  claimToken: string;
  startedAt: Date;
  durationMs: number;
  responseCode: number | null;
  responseBody: string | null;
  error: string | null;
  outcome: OutcomeKind;
  /** For `retry`: due again this long after the write. */
  delayMs: number | null;
  /** Null when the attempt could not be signed. */
  signed: SignedParts | null;
  /** The receiver's Date header, if it sent one. */
  responseDate: Date | null;
}

export interface AppliedAttempt {
  deliveryId: string;
  endpointId: string;
  outcome: OutcomeKind;
  attemptNumber: number;
  /** Set when the endpoint is (now) disabled. */
  endpointDisabledReason: string | null;
}

export interface DispatchedRow {
  id: string;
  endpointId: string;
  nextRetryAt: Date;
  /** Set when the row was written already claimed for the in-process worker (see insertForSubscribers). */
  claimed?: ClaimedDelivery;
  /** Set when the row is an open coalescing delivery: due in this many milliseconds (database clock). */
  coalescingDueInMs?: number;
}

/** A claim the in-process worker lets a dispatch stamp on the rows it writes. */
export interface InsertClaim {
  token: string;
  leaseMs: number;
  /** Endpoints this worker already holds its claim-ahead share of: their rows are left unclaimed. */
  saturated: string[];
}
