// Item 5 of the security review: AES-GCM accepts truncated tags (down to 4 bytes) and any IV length
// unless told otherwise, so a forger who could write a ciphertext row would need to guess only 32
// bits of tag. Decrypt must insist on the 16-byte tag and the 12-byte IV that encrypt writes.
import { randomBytes } from 'node:crypto';
import { createSecretBox, SecretDecryptError } from '../../lib/secrets';

const box = createSecretBox([randomBytes(32)]);

/** Rewrites one part of a sealed value (`v1:kid:iv:tag:ct`). */
function withPart(sealed: string, index: 2 | 3, change: (b: Buffer) => Buffer): string {
  const parts = sealed.split(':');
  parts[index] = change(Buffer.from(parts[index], 'base64url')).toString('base64url');
  return parts.join(':');
}

describe('secret box refuses short tags and odd IVs', () => {
  it('refuses a 4-byte tag that is the true tag truncated (what GCM alone would accept)', () => {
    const sealed = box.encrypt('ghs_secret-token-value', 'lease:d1');
    const forged = withPart(sealed, 3, (tag) => tag.subarray(0, 4));
    expect(() => box.decrypt(forged, 'lease:d1')).toThrow(SecretDecryptError);
    expect(() => box.decrypt(forged, 'lease:d1')).toThrow(/tag/);
  });

  it.each([4, 8, 12, 15])('refuses a %i-byte truncation of the true tag', (length) => {
    const sealed = box.encrypt('value', 'c');
    expect(() =>
      box.decrypt(
        withPart(sealed, 3, (tag) => tag.subarray(0, length)),
        'c',
      ),
    ).toThrow(SecretDecryptError);
  });

  it('refuses an IV that is not 12 bytes, before trying it', () => {
    const sealed = box.encrypt('value', 'c');
    expect(() =>
      box.decrypt(
        withPart(sealed, 2, (iv) => Buffer.concat([iv, Buffer.alloc(4)])),
        'c',
      ),
    ).toThrow(/IV/);
    expect(() =>
      box.decrypt(
        withPart(sealed, 2, (iv) => iv.subarray(0, 8)),
        'c',
      ),
    ).toThrow(/IV/);
  });

  it('still opens what it sealed', () => {
    expect(box.decrypt(box.encrypt('value', 'c'), 'c')).toBe('value');
  });
});
