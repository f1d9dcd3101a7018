import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';

/**
 * Password hashing with scrypt (node:crypto). A hash is stored as the self-describing string
 * `scrypt$N$r$p$<salt base64>$<hash base64>`, so the cost can be raised later without breaking
 * the hashes already stored: verification always uses the parameters written in the string.
 */

/** Cost parameters for new hashes: N=2^14, r=8, p=1 (16 MiB, ~50 ms), OWASP's scrypt minimum. */
export const SCRYPT_PARAMS = { N: 16_384, r: 8, p: 1 } as const;
const SALT_BYTES = 16;
const KEY_BYTES = 64;
// Upper bounds on parameters read back from storage, so a corrupt row cannot make us allocate gigabytes.
const MAX_N = 1 << 20;
const MAX_RP = 64;

function derive(password: string, salt: Buffer, keyLength: number, options: ScryptOptions): Promise<Buffer> {
  // scrypt needs 128 * N * r bytes; Node's default cap (32 MiB) is raised to fit what we accept.
  const maxmem = 256 * (options.N ?? SCRYPT_PARAMS.N) * (options.r ?? SCRYPT_PARAMS.r);
  return new Promise((resolve, reject) => {
    scrypt(password.normalize('NFKC'), salt, keyLength, { ...options, maxmem }, (error, key) => (error ? reject(error) : resolve(key)));
  });
}

function acceptableParams(N: number, r: number, p: number): boolean {
  const isPowerOfTwo = Number.isSafeInteger(N) && N >= 2 && N <= MAX_N && (N & (N - 1)) === 0;
  const inRange = (n: number) => Number.isSafeInteger(n) && n >= 1 && n <= MAX_RP;
  return isPowerOfTwo && inRange(r) && inRange(p);
}

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(SALT_BYTES);
  const { N, r, p } = SCRYPT_PARAMS;
  const hash = await derive(password, salt, KEY_BYTES, { N, r, p });
  return ['scrypt', N, r, p, salt.toString('base64'), hash.toString('base64')].join('$');
}

/** True when `password` matches `stored`; false for a wrong password or a malformed hash. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [N, r, p] = parts.slice(1, 4).map(Number) as [number, number, number];
  if (!acceptableParams(N, r, p)) return false;
  const salt = Buffer.from(parts[4]!, 'base64');
  const expected = Buffer.from(parts[5]!, 'base64');
  if (salt.length === 0 || expected.length === 0) return false;
  const actual = await derive(password, salt, expected.length, { N, r, p });
  return timingSafeEqual(actual, expected);
}

let dummyHash: Promise<string> | undefined;

/**
 * Spends the same time as checking a real password, for logins naming an unknown user, so the
 * response time does not reveal which logins exist.
 */
export async function verifyDummyPassword(password: string): Promise<false> {
  dummyHash ??= hashPassword(randomBytes(16).toString('hex'));
  await verifyPassword(password, await dummyHash);
  return false;
}
