// The flows' signed state and PKCE derivation (pure, no I/O); binding and single use are checked
// over HTTP in test/connect/state-binding.test.ts.
import { createHash, randomUUID } from 'node:crypto';
import {
  loginBinding,
  pkceChallenge,
  pkceVerifier,
  sessionBinding,
  signState,
  STATE_TTL_MS,
  verifyState,
} from '../../api/connect/connect-state';
import { loadConfig } from '../../lib/config';

const env = (key: string) => ({ ADMIN_API_TOKEN: 'admin-token-0123456789', SECRETS_KEY: Buffer.alloc(32, key).toString('base64') });
const config = loadConfig(env('a'));
const owner = randomUUID();

it('round-trips purpose, owner, app type, next and binding, and expires after 10 minutes', () => {
  const now = Date.now();
  const { value, nonce } = signState(config, { purpose: 'github', ownerId: owner, appType: 'lite', binding: 's:abc' }, now);
  expect(verifyState(config, value, 'github', now + STATE_TTL_MS - 1)).toEqual({
    ok: true,
    state: { purpose: 'github', ownerId: owner, appType: 'lite', next: null, binding: 's:abc', nonce, expiresAtMs: now + STATE_TTL_MS },
  });
  expect(verifyState(config, value, 'github', now + STATE_TTL_MS + 1)).toMatchObject({
    ok: false,
    reason: expect.stringContaining('expired'),
  });
  const login = signState(config, { purpose: 'gitlab-login', next: '/rigs/1', binding: 'l:x' }, now);
  expect(verifyState(config, login.value, 'gitlab-login', now)).toMatchObject({ ok: true, state: { ownerId: null, next: '/rigs/1' } });
});

it('refuses states that were altered, signed with another key, or made for another flow', () => {
  const { value } = signState(config, { purpose: 'gitlab', ownerId: owner, binding: 's:abc' });
  const [v, payload, mac] = value.split('.');
  const forgedPayload = Buffer.from(
    JSON.stringify({ p: 'gitlab', o: randomUUID(), t: null, x: null, b: 's:abc', n: 'x', e: Date.now() + 1e6 }),
  ).toString('base64url');
  expect(verifyState(config, `${v}.${forgedPayload}.${mac}`, 'gitlab')).toMatchObject({
    ok: false,
    reason: expect.stringContaining('not issued'),
  });
  expect(verifyState(loadConfig(env('b')), value, 'gitlab')).toMatchObject({ ok: false });
  expect(verifyState(config, value, 'github')).toMatchObject({ ok: false, reason: expect.stringContaining('gitlab flow') });
  expect(verifyState(config, value, 'gitlab-login')).toMatchObject({ ok: false, reason: expect.stringContaining('gitlab flow') });
  expect(verifyState(config, `${v}.${payload}`, 'gitlab')).toMatchObject({ ok: false });
  expect(verifyState(config, undefined, 'gitlab')).toMatchObject({ ok: false, reason: 'the state is missing' });
});

it('binds to a session without showing its id, to an owner token, to admin bearer, or to a sign-in cookie', () => {
  const session = randomUUID();
  const bound = sessionBinding({ kind: 'owner', ownerId: owner, via: 'cookie', sessionId: session });
  expect(bound).toMatch(/^s:[0-9a-f]{32}$/);
  expect(bound).not.toContain(session);
  expect(sessionBinding({ kind: 'admin', via: 'cookie', sessionId: session })).toBe(bound);
  expect(sessionBinding({ kind: 'owner', ownerId: owner, via: 'cookie', sessionId: randomUUID() })).not.toBe(bound);
  expect(sessionBinding({ kind: 'owner', ownerId: owner, via: 'token' })).toBe(`t:${owner}`);
  expect(sessionBinding({ kind: 'admin', via: 'bearer' })).toBe('a:bearer');
  expect(loginBinding('cookie-a')).toMatch(/^l:[0-9a-f]{32}$/);
  expect(loginBinding('cookie-a')).not.toBe(loginBinding('cookie-b'));
});

it('derives a 43-character PKCE verifier per nonce and its S256 challenge', () => {
  const a = pkceVerifier(config, 'nonce-a');
  expect(a).toMatch(/^[\w-]{43}$/);
  expect(pkceVerifier(config, 'nonce-a')).toBe(a);
  expect(pkceVerifier(config, 'nonce-b')).not.toBe(a);
  expect(pkceVerifier(loadConfig(env('b')), 'nonce-a')).not.toBe(a);
  expect(pkceChallenge(a)).toBe(createHash('sha256').update(a).digest('base64url'));
});
