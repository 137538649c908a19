// The connect flows' signed state and PKCE derivation (pure, no I/O).
import { createHash, randomUUID } from 'node:crypto';
import { pkceChallenge, pkceVerifier, signState, STATE_TTL_MS, verifyState } from '../../api/connect/connect-state';
import { loadConfig } from '../../lib/config';

const env = (key: string) => ({ ADMIN_API_TOKEN: 'admin-token-0123456789', SECRETS_KEY: Buffer.alloc(32, key).toString('base64') });
const config = loadConfig(env('a'));
const owner = randomUUID();

it('round-trips owner, provider and app type, and expires after 10 minutes', () => {
  const now = Date.now();
  const { value, nonce } = signState(config, { provider: 'github', ownerId: owner, appType: 'lite' }, now);
  expect(verifyState(config, value, 'github', now + STATE_TTL_MS - 1)).toEqual({
    ok: true,
    state: { provider: 'github', ownerId: owner, appType: 'lite', nonce, expiresAtMs: now + STATE_TTL_MS },
  });
  expect(verifyState(config, value, 'github', now + STATE_TTL_MS + 1)).toMatchObject({
    ok: false,
    reason: expect.stringContaining('expired'),
  });
});

it('refuses states that were altered, signed with another key, or made for the other provider', () => {
  const { value } = signState(config, { provider: 'gitlab', ownerId: owner });
  const [v, payload, mac] = value.split('.');
  const forgedPayload = Buffer.from(JSON.stringify({ p: 'gitlab', o: randomUUID(), t: null, n: 'x', e: Date.now() + 1e6 })).toString(
    'base64url',
  );
  expect(verifyState(config, `${v}.${forgedPayload}.${mac}`, 'gitlab')).toMatchObject({
    ok: false,
    reason: expect.stringContaining('not issued'),
  });
  expect(verifyState(loadConfig(env('b')), value, 'gitlab')).toMatchObject({ ok: false });
  expect(verifyState(config, value, 'github')).toMatchObject({ ok: false, reason: expect.stringContaining('gitlab flow') });
  expect(verifyState(config, `${v}.${payload}`, 'gitlab')).toMatchObject({ ok: false });
  expect(verifyState(config, undefined, 'gitlab')).toMatchObject({ ok: false, reason: 'the state is missing' });
});

it('derives a 43-character PKCE verifier per nonce and its S256 challenge', () => {
  const a = pkceVerifier(config, 'nonce-a');
  expect(a).toMatch(/^[\w-]{43}$/);
  expect(pkceVerifier(config, 'nonce-a')).toBe(a);
  expect(pkceVerifier(config, 'nonce-b')).not.toBe(a);
  expect(pkceVerifier(loadConfig(env('b')), 'nonce-a')).not.toBe(a);
  expect(pkceChallenge(a)).toBe(createHash('sha256').update(a).digest('base64url'));
});
