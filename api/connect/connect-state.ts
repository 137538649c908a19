// The `state` of the connect flows: who the integration is for, signed and short-lived, so a
// callback only registers what this service started. GitLab's PKCE verifier is derived from the
// state's nonce with a server key: it never reaches the browser and needs no server-side storage.
import { createHash, createHmac, randomBytes } from 'node:crypto';
import type { AppType, Config } from '../../lib/config';
import { safeEqual } from '../../lib/secrets';

export const STATE_TTL_MS = 10 * 60 * 1000;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export interface ConnectState {
  provider: 'github' | 'gitlab';
  ownerId: string;
  appType: AppType | null;
  nonce: string;
  expiresAtMs: number;
}

/** Derived keys, one per purpose, from the current secrets key (rotating it voids states in flight). */
function key(config: Config, purpose: string): Buffer {
  return createHmac('sha256', config.secretsKeys[0]).update(`connect:${purpose}:v1`).digest();
}

function mac(config: Config, payload: string): string {
  return createHmac('sha256', key(config, 'state')).update(payload).digest('base64url');
}

/** A signed state for a new connect flow, and its nonce (the GitLab flow derives its PKCE verifier from it). */
export function signState(
  config: Config,
  args: { provider: 'github' | 'gitlab'; ownerId: string; appType?: AppType },
  now = Date.now(),
): { value: string; nonce: string } {
  const nonce = randomBytes(16).toString('base64url');
  const body = { p: args.provider, o: args.ownerId, t: args.appType ?? null, n: nonce, e: now + STATE_TTL_MS };
  const payload = `v1.${Buffer.from(JSON.stringify(body)).toString('base64url')}`;
  return { value: `${payload}.${mac(config, payload)}`, nonce };
}

export type StateCheck = { ok: true; state: ConnectState } | { ok: false; reason: string };

/** Verifies signature, expiry and provider of a state that came back from a provider. */
export function verifyState(config: Config, value: unknown, provider: 'github' | 'gitlab', now = Date.now()): StateCheck {
  if (typeof value !== 'string' || value.length === 0) return { ok: false, reason: 'the state is missing' };
  const [v, encoded, signature] = value.split('.');
  if (v !== 'v1' || !encoded || !signature || !safeEqual(signature, mac(config, `v1.${encoded}`))) {
    return { ok: false, reason: 'the state was not issued by this service (or was altered)' };
  }
  let body: { p?: unknown; o?: unknown; t?: unknown; n?: unknown; e?: unknown };
  try {
    body = JSON.parse(Buffer.from(encoded, 'base64url').toString('utf8'));
  } catch {
    return { ok: false, reason: 'the state is malformed' };
  }
  if (body.p !== provider) return { ok: false, reason: `the state belongs to a ${String(body.p)} flow, not ${provider}` };
  if (typeof body.o !== 'string' || !UUID.test(body.o) || typeof body.n !== 'string' || typeof body.e !== 'number') {
    return { ok: false, reason: 'the state is malformed' };
  }
  if (now > body.e) return { ok: false, reason: 'the state expired (connect flows must finish within 10 minutes)' };
  const appType = body.t === 'standard' || body.t === 'lite' ? body.t : null;
  return { ok: true, state: { provider, ownerId: body.o, appType, nonce: body.n, expiresAtMs: body.e } };
}

/** The PKCE code_verifier of a flow (RFC 7636: 43 characters of base64url). */
export function pkceVerifier(config: Config, nonce: string): string {
  return createHmac('sha256', key(config, 'pkce')).update(nonce).digest('base64url');
}

/** S256 code_challenge for a verifier. */
export function pkceChallenge(verifier: string): string {
  return createHash('sha256').update(verifier).digest('base64url');
}
