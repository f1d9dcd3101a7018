import { secretFingerprint, type SecretBox } from '../secrets.ts';
import { decodeSecret } from '../signing.ts';

/** What a claim returns about the endpoint's secrets (still sealed). */
export interface SealedEndpointSecrets {
  endpointId: string;
  secretEncrypted: string;
  previousSecretEncrypted: string | null;
  previousSecretExpiresAt: Date | null;
}

/** The keys to sign one attempt with, and which secrets they are. */
export interface SigningKeys {
  /** Current first, then the previous one during its grace period. */
  keys: readonly Buffer[];
  /** secretFingerprint of each key's secret, in the same order: what the attempt log records. */
  fingerprints: readonly string[];
}

// Both possible answers are built once per entry, so signing an attempt allocates nothing here.
interface CachedKeys {
  sealed: string;
  sealedPrevious: string | null;
  currentOnly: SigningKeys;
  withPrevious: SigningKeys | null;
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
  keysFor(secrets: SealedEndpointSecrets, now: Date = new Date()): readonly Buffer[] {
    return this.signingKeysFor(secrets, now).keys;
  }

  /** keysFor with the fingerprints of the secrets behind the keys. */
  signingKeysFor(secrets: SealedEndpointSecrets, now: Date = new Date()): SigningKeys {
    const entry = this.#entry(secrets);
    const graceActive = secrets.previousSecretExpiresAt !== null && secrets.previousSecretExpiresAt.getTime() > now.getTime();
    return graceActive && entry.withPrevious ? entry.withPrevious : entry.currentOnly;
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
    const current = this.#box.open(secrets.secretEncrypted);
    const previous = secrets.previousSecretEncrypted ? this.#box.open(secrets.previousSecretEncrypted) : null;
    const currentOnly: SigningKeys = { keys: [decodeSecret(current)], fingerprints: [secretFingerprint(current)] };
    const fresh: CachedKeys = {
      sealed: secrets.secretEncrypted,
      sealedPrevious: secrets.previousSecretEncrypted,
      currentOnly,
      withPrevious:
        previous === null
          ? null
          : {
              keys: [...currentOnly.keys, decodeSecret(previous)],
              fingerprints: [...currentOnly.fingerprints, secretFingerprint(previous)],
            },
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
