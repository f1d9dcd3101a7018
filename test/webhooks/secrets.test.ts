import { createHash, randomBytes } from 'node:crypto';
import { describe, it, expect } from 'vitest';
import { SecretBox, generateEndpointSecret, secretFingerprint } from '../../src/webhooks/secrets.ts';
import { decodeSecret } from '../../src/webhooks/signing.ts';

describe('generateEndpointSecret', () => {
  it('is whsec_ followed by base64 of 32 bytes', () => {
    const secret = generateEndpointSecret();
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    expect(decodeSecret(secret)).toHaveLength(32);
  });

  it('differs on every call', () => {
    expect(generateEndpointSecret()).not.toBe(generateEndpointSecret());
  });
});

describe('secretFingerprint', () => {
  it('is the first 8 hex characters of the sha256 of the whole whsec_ string, as a user computes it', () => {
    const secret = generateEndpointSecret();
    expect(secretFingerprint(secret)).toBe(createHash('sha256').update(secret, 'utf8').digest('hex').slice(0, 8));
    expect(secretFingerprint(secret)).toMatch(/^[0-9a-f]{8}$/);
  });

  it('tells secrets apart', () => {
    const secrets = Array.from({ length: 50 }, generateEndpointSecret);
    expect(new Set(secrets.map(secretFingerprint)).size).toBe(50);
  });
});

describe('SecretBox', () => {
  const key = randomBytes(32);
  const secret = generateEndpointSecret();

  it('opens what it sealed', () => {
    const box = new SecretBox(key);
    expect(box.open(box.seal(secret))).toBe(secret);
  });

  it('uses a fresh IV for every seal', () => {
    const box = new SecretBox(key);
    expect(box.seal(secret)).not.toBe(box.seal(secret));
  });

  it('writes v1.<keyId>.<iv>.<tag>.<ciphertext> and never the plaintext', () => {
    const sealed = new SecretBox(key).seal(secret);
    expect(sealed).toMatch(/^v1\.[0-9a-f]{16}\.[\w-]{16}\.[\w-]{22}\.[\w-]+$/);
    expect(sealed).not.toContain(secret);
    expect(sealed).not.toContain(secret.slice('whsec_'.length));
  });

  it('throws when any part of the sealed value was tampered with', () => {
    const box = new SecretBox(key);
    const parts = box.seal(secret).split('.');
    for (const index of [2, 3, 4]) {
      const tampered = [...parts];
      const part = tampered[index]!;
      tampered[index] = (part[0] === 'A' ? 'B' : 'A') + part.slice(1);
      expect(() => box.open(tampered.join('.'))).toThrow(/tampered/);
    }
  });

  it('throws on values that are not sealed secrets', () => {
    const box = new SecretBox(key);
    expect(() => box.open(secret)).toThrow(/not a v1 sealed value/);
    expect(() => box.open('v2.a.b.c.d')).toThrow(/not a v1 sealed value/);
  });

  it('throws when opened with a different key', () => {
    const sealed = new SecretBox(key).seal(secret);
    expect(() => new SecretBox(randomBytes(32)).open(sealed)).toThrow(/unknown key/);
  });

  it('opens values sealed with a previous key after the master key is rotated', () => {
    const sealedWithOld = new SecretBox(key).seal(secret);
    const rotated = new SecretBox(randomBytes(32), [key]);
    expect(rotated.open(sealedWithOld)).toBe(secret);
    const resealed = rotated.seal(secret);
    expect(resealed.split('.')[1]).not.toBe(sealedWithOld.split('.')[1]);
    expect(rotated.open(resealed)).toBe(secret);
  });

  it('refuses keys that are not 32 bytes', () => {
    expect(() => new SecretBox(randomBytes(16))).toThrow(/32 bytes/);
    expect(() => new SecretBox(key, [randomBytes(31)])).toThrow(/32 bytes/);
  });
});
