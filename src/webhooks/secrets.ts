import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { SECRET_PREFIX } from './signing.ts';

const SECRET_KEY_BYTES = 32;

/** A new signing secret: `whsec_` + base64 of 32 random bytes. */
export function generateEndpointSecret(): string {
  return SECRET_PREFIX + randomBytes(SECRET_KEY_BYTES).toString('base64');
}

/** Hex characters of a secret's fingerprint: enough to tell a user's few secrets apart, far too few to say anything about one. */
export const FINGERPRINT_LENGTH = 8;

/**
 * Names a signing secret without revealing it: the first FINGERPRINT_LENGTH hex characters of
 * the sha256 of the whole `whsec_…` string, so a user can compute it from the secret they hold
 * (`printf %s "$SECRET" | sha256sum | cut -c1-8`) and tell which one they have.
 */
export function secretFingerprint(secret: string): string {
  return createHash('sha256').update(secret).digest('hex').slice(0, FINGERPRINT_LENGTH);
}

const SEALED_VERSION = 'v1';
const AES_KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;

/** Names a key without revealing it, so a sealed value says which key opens it. */
function keyId(key: Buffer): string {
  return createHash('sha256').update(key).digest('hex').slice(0, 16);
}

/**
 * AES-256-GCM encryption of secrets at rest. Sealed values look like
 * `v1.<keyId>.<iv>.<tag>.<ciphertext>` (base64url parts); keeping the key id in the value
 * lets a rotated master key still open rows sealed with a key listed in `previousKeys`.
 */
export class SecretBox {
  readonly #current: { id: string; key: Buffer };
  readonly #keysById: Map<string, Buffer>;

  constructor(masterKey: Buffer, previousKeys: Buffer[] = []) {
    for (const key of [masterKey, ...previousKeys]) {
      if (key.length !== AES_KEY_BYTES) throw new Error(`SecretBox keys must be ${AES_KEY_BYTES} bytes`);
    }
    this.#current = { id: keyId(masterKey), key: masterKey };
    this.#keysById = new Map([masterKey, ...previousKeys].map((key) => [keyId(key), key]));
  }

  seal(plaintext: string): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.#current.key, iv);
    const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    const tag = cipher.getAuthTag();
    return [SEALED_VERSION, this.#current.id, iv, tag, ciphertext]
      .map((part) => (typeof part === 'string' ? part : part.toString('base64url')))
      .join('.');
  }

  open(sealed: string): string {
    const parts = sealed.split('.');
    const [version, id, iv, tag, ciphertext] = parts;
    if (parts.length !== 5 || version !== SEALED_VERSION || !id || !iv || !tag || ciphertext === undefined) {
      throw new Error('Cannot open secret: not a v1 sealed value');
    }
    const key = this.#keysById.get(id);
    if (!key) throw new Error(`Cannot open secret: it was sealed with unknown key ${id}`);
    const ivBytes = Buffer.from(iv, 'base64url');
    const tagBytes = Buffer.from(tag, 'base64url');
    // Node accepts truncated GCM tags, which would weaken authentication; insist on full sizes.
    if (ivBytes.length !== IV_BYTES || tagBytes.length !== TAG_BYTES) {
      throw new Error('Cannot open secret: malformed IV or authentication tag');
    }
    const decipher = createDecipheriv('aes-256-gcm', key, ivBytes, { authTagLength: TAG_BYTES });
    decipher.setAuthTag(tagBytes);
    try {
      return Buffer.concat([decipher.update(Buffer.from(ciphertext, 'base64url')), decipher.final()]).toString('utf8');
    } catch {
      throw new Error('Cannot open secret: the data was tampered with or the key is wrong');
    }
  }
}

/** The fingerprint of a sealed secret; null when it cannot be opened (a master key that is gone), so a caller still answers. */
export function sealedSecretFingerprint(box: SecretBox, sealed: string): string | null {
  try {
    return secretFingerprint(box.open(sealed));
  } catch {
    return null;
  }
}
