// Secrets at rest: AES-256-GCM with a key id beside each ciphertext, so SECRETS_KEY can rotate
// (new writes use the current key; SECRETS_KEY_PREVIOUS keys still decrypt old rows).
import { createCipheriv, createDecipheriv, createHash, hash, randomBytes, timingSafeEqual } from 'node:crypto';

const VERSION = 'v1';
// What encrypt writes. GCM on its own accepts tags down to 4 bytes and IVs of any length, so decrypt
// insists on these: a truncated tag would leave a forger 32 bits to guess.
const IV_BYTES = 12;
const TAG_BYTES = 16;

export class SecretDecryptError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SecretDecryptError';
  }
}

export interface SecretBox {
  /** Encrypts `plain`; `context` (e.g. "integration:<id>:access") is bound as associated data. */
  encrypt(plain: string, context: string): string;
  decrypt(sealed: string, context: string): string;
  /** Key id the current key writes under. */
  readonly keyId: string;
  /** Ids of every key this box opens (the current one first). */
  readonly keyIds: readonly string[];
}

/** Key id: a short SHA-256 prefix of the key, so it can be matched without storing the key. */
export function keyIdOf(key: Buffer): string {
  return createHash('sha256').update(key).digest('hex').slice(0, 8);
}

/** Builds a SecretBox from keys, current first. */
export function createSecretBox(keys: Buffer[]): SecretBox {
  if (keys.length === 0) throw new Error('at least one key is required');
  for (const k of keys) if (k.length !== 32) throw new Error('keys must be 32 bytes');
  const byId = new Map(keys.map((k) => [keyIdOf(k), k] as const));
  const current = keys[0];
  const currentId = keyIdOf(current);

  return {
    keyId: currentId,
    keyIds: [...byId.keys()],
    encrypt(plain, context) {
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv('aes-256-gcm', current, iv, { authTagLength: TAG_BYTES });
      cipher.setAAD(Buffer.from(context, 'utf8'));
      const ct = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
      const tag = cipher.getAuthTag();
      return [VERSION, currentId, iv.toString('base64url'), tag.toString('base64url'), ct.toString('base64url')].join(':');
    },
    decrypt(sealed, context) {
      const parts = sealed.split(':');
      if (parts.length !== 5 || parts[0] !== VERSION) throw new SecretDecryptError('ciphertext is malformed');
      const [, kid, ivB, tagB, ctB] = parts;
      const key = byId.get(kid);
      if (!key) {
        throw new SecretDecryptError(`ciphertext was written with key ${kid}, which is neither SECRETS_KEY nor in SECRETS_KEY_PREVIOUS`);
      }
      const iv = Buffer.from(ivB, 'base64url');
      const tag = Buffer.from(tagB, 'base64url');
      if (iv.length !== IV_BYTES) throw new SecretDecryptError(`ciphertext is malformed (IV of ${iv.length} bytes, not ${IV_BYTES})`);
      if (tag.length !== TAG_BYTES) throw new SecretDecryptError(`ciphertext is malformed (tag of ${tag.length} bytes, not ${TAG_BYTES})`);
      try {
        const decipher = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
        decipher.setAAD(Buffer.from(context, 'utf8'));
        decipher.setAuthTag(tag);
        return Buffer.concat([decipher.update(Buffer.from(ctB, 'base64url')), decipher.final()]).toString('utf8');
      } catch {
        throw new SecretDecryptError(`ciphertext failed authentication under key ${kid} (tampered or wrong context)`);
      }
    },
  };
}

/** SHA-256 hex of a token: the lookup key for container tokens. */
export function sha256Hex(value: string): string {
  // One-shot: a third of createHash's cost, on every pull and every refresh.
  return hash('sha256', value, 'hex');
}

/** Short, non-reversible label of a token for audit rows and UIs. */
export function fingerprint(token: string): string {
  return `sha256:${sha256Hex(token).slice(0, 16)}`;
}

/** Constant-time string comparison (lengths leak, contents do not). */
export function safeEqual(a: string, b: string): boolean {
  const ab = Buffer.from(a, 'utf8');
  const bb = Buffer.from(b, 'utf8');
  if (ab.length !== bb.length) {
    timingSafeEqual(ab, ab); // keep the work similar on mismatch
    return false;
  }
  return timingSafeEqual(ab, bb);
}

/** A new random token with a recognisable prefix (secret scanners can match `rcc_`). */
export function newOpaqueToken(prefix: string): string {
  return `${prefix}_${randomBytes(32).toString('base64url')}`;
}
