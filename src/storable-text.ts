/** Unpaired UTF-16 surrogates cannot be stored as UTF-8; they would come back altered. */
const UNPAIRED_SURROGATE = /\p{Cs}/u;

/** PostgreSQL text and jsonb cannot hold NUL, and cannot hold unpaired surrogates faithfully. */
export function isStorableText(value: string): boolean {
  return !value.includes('\u0000') && !UNPAIRED_SURROGATE.test(value);
}
