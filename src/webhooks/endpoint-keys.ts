import type { SecretBox } from './secrets.ts';
import { decodeSecret } from './signing.ts';

/** What a claim returns about the endpoint's secrets (still sealed). */
export interface SealedEndpointSecrets {
  endpointId: string;
  secretEncrypted: string;
  previousSecretEncrypted: string | null;
  previousSecretExpiresAt: Date | null;
}

interface CachedKeys {
  sealed: string;
  sealedPrevious: string | null;
  current: Buffer;
  previous: Buffer | null;
}

/** Enough for every endpoint a busy worker talks to; beyond it the least recently used is dropped. */
const MAX_CACHED_ENDPOINTS = 10_000;

/**
 * Decrypted, base64-decoded HMAC keys per endpoint, so signing an attempt costs two HMACs and
 * no AES or base64 work. An entry is valid only for the exact ciphertexts it was made from: a
 * rotation writes new ciphertexts, which misses the cache and replaces the entry.
 */
export class EndpointKeyCache {
  readonly #box: SecretBox;
  readonly #entries = new Map<string, CachedKeys>();

  constructor(box: SecretBox) {
    this.#box = box;
  }

  /** The keys to sign with now: the current one first, then the previous one during its grace period. Throws if a secret cannot be opened. */
  keysFor(secrets: SealedEndpointSecrets, now: Date = new Date()): Buffer[] {
    const entry = this.#entry(secrets);
    const graceActive =
      entry.previous !== null && secrets.previousSecretExpiresAt !== null && secrets.previousSecretExpiresAt.getTime() > now.getTime();
    return graceActive && entry.previous ? [entry.current, entry.previous] : [entry.current];
  }

  get size(): number {
    return this.#entries.size;
  }

  #entry(secrets: SealedEndpointSecrets): CachedKeys {
    const cached = this.#entries.get(secrets.endpointId);
    if (cached && cached.sealed === secrets.secretEncrypted && cached.sealedPrevious === secrets.previousSecretEncrypted) {
      // Re-insert: Map order doubles as recency order.
      this.#entries.delete(secrets.endpointId);
      this.#entries.set(secrets.endpointId, cached);
      return cached;
    }
    const fresh: CachedKeys = {
      sealed: secrets.secretEncrypted,
      sealedPrevious: secrets.previousSecretEncrypted,
      current: decodeSecret(this.#box.open(secrets.secretEncrypted)),
      previous: secrets.previousSecretEncrypted ? decodeSecret(this.#box.open(secrets.previousSecretEncrypted)) : null,
    };
    this.#entries.delete(secrets.endpointId);
    this.#entries.set(secrets.endpointId, fresh);
    if (this.#entries.size > MAX_CACHED_ENDPOINTS) {
      const oldest = this.#entries.keys().next().value;
      if (oldest !== undefined) this.#entries.delete(oldest);
    }
    return fresh;
  }
}
