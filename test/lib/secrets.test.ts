import { randomBytes } from 'node:crypto';
import { createSecretBox, fingerprint, keyIdOf, safeEqual, SecretDecryptError, sha256Hex } from '../../lib/secrets';

const keyA = randomBytes(32);
const keyB = randomBytes(32);
// GitHub's newer installation tokens run past 500 characters.
const longToken = `ghs_${randomBytes(390).toString('base64url')}`;

describe('secret box (AES-256-GCM)', () => {
  it('round-trips long tokens and never stores the plaintext', () => {
    const box = createSecretBox([keyA]);
    expect(longToken.length).toBeGreaterThan(500);
    const sealed = box.encrypt(longToken, 'lease:d1');
    expect(sealed).not.toContain(longToken.slice(4, 40));
    expect(sealed.split(':')[1]).toBe(keyIdOf(keyA));
    expect(box.decrypt(sealed, 'lease:d1')).toBe(longToken);
  });

  it('uses a fresh IV per encryption', () => {
    const box = createSecretBox([keyA]);
    expect(box.encrypt('same', 'c')).not.toBe(box.encrypt('same', 'c'));
  });

  it('refuses a wrong key with a message naming the key id', () => {
    const sealed = createSecretBox([keyA]).encrypt('secret', 'c');
    expect(() => createSecretBox([keyB]).decrypt(sealed, 'c')).toThrow(
      new SecretDecryptError(`ciphertext was written with key ${keyIdOf(keyA)}, which is neither SECRETS_KEY nor in SECRETS_KEY_PREVIOUS`),
    );
  });

  it('refuses a tampered ciphertext, tag or context', () => {
    const box = createSecretBox([keyA]);
    const sealed = box.encrypt('secret-value', 'lease:d1');
    const parts = sealed.split(':');
    const flip = (b64: string) => {
      const buf = Buffer.from(b64, 'base64url');
      buf[0] ^= 1;
      return buf.toString('base64url');
    };
    const tamperedCt = [...parts.slice(0, 4), flip(parts[4])].join(':');
    const tamperedTag = [...parts.slice(0, 3), flip(parts[3]), parts[4]].join(':');
    for (const bad of [tamperedCt, tamperedTag]) {
      expect(() => box.decrypt(bad, 'lease:d1')).toThrow(/failed authentication/);
    }
    expect(() => box.decrypt(sealed, 'lease:d2')).toThrow(/failed authentication/);
    expect(() => box.decrypt('garbage', 'lease:d1')).toThrow(/malformed/);
  });

  it('rotates: the new key writes, the previous key still reads', () => {
    const old = createSecretBox([keyA]).encrypt('kept', 'c');
    const rotated = createSecretBox([keyB, keyA]);
    expect(rotated.decrypt(old, 'c')).toBe('kept');
    expect(rotated.encrypt('new', 'c').split(':')[1]).toBe(keyIdOf(keyB));
  });

  it('hashes, fingerprints and compares', () => {
    expect(sha256Hex('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(fingerprint('abc')).toBe('sha256:ba7816bf8f01cfea');
    expect(safeEqual('abc', 'abc')).toBe(true);
    expect(safeEqual('abc', 'abd')).toBe(false);
    expect(safeEqual('abc', 'abcd')).toBe(false);
  });
});
