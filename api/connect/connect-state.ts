// The `state` of the browser flows that leave for a provider and come back: connecting an
// integration (GitHub install, GitLab OAuth) and signing in (GitHub, GitLab). Signed and
// short-lived, so a callback only finishes what this service started; bound to the browser that
// started it (its session, or its sign-in cookie) and used once (state-store.ts), so a state
// replayed or carried to another browser finishes nothing. GitLab's PKCE verifier is derived from
// the state's nonce with a server key: it never reaches the browser and needs no storage.
import { createHash, createHmac, randomBytes } from 'node:crypto';
import type { AppType, Config } from '../../lib/config';
import { safeEqual, sha256Hex } from '../../lib/secrets';
import type { Principal } from '../auth/principal';

export const STATE_TTL_MS = 10 * 60 * 1000;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Which flow a state belongs to: connecting an integration, or signing in. */
export type StatePurpose = 'github' | 'gitlab' | 'github-login' | 'gitlab-login';

export interface FlowState {
  purpose: StatePurpose;
  /** The owner a connect flow registers for (null for sign-in). */
  ownerId: string | null;
  appType: AppType | null;
  /** Where a sign-in goes afterwards (a path on this site). */
  next: string | null;
  /** Who may finish the flow (sessionBinding / loginBinding). */
  binding: string;
  nonce: string;
  expiresAtMs: number;
}

/** The binding of a signed-in caller: their session, or for bearer callers who they are. */
export function sessionBinding(principal: Principal): string {
  if (principal.sessionId) return `s:${sha256Hex(`session:${principal.sessionId}`).slice(0, 32)}`;
  return principal.kind === 'owner' ? `t:${principal.ownerId}` : 'a:bearer';
}

/** The binding of an anonymous browser by the value of its sign-in cookie. */
export function loginBinding(cookieValue: string): string {
  return `l:${sha256Hex(`login:${cookieValue}`).slice(0, 32)}`;
}

/** Derived keys, one per purpose, from the current secrets key (rotating it voids states in flight). */
function key(config: Config, purpose: string): Buffer {
  return createHmac('sha256', config.secretsKeys[0]).update(`connect:${purpose}:v1`).digest();
}

function mac(config: Config, payload: string): string {
  return createHmac('sha256', key(config, 'state')).update(payload).digest('base64url');
}

const CONNECT = new Set<StatePurpose>(['github', 'gitlab']);

/** A signed state for a new flow, and its nonce (the GitLab flows derive their PKCE verifier from it). */
export function signState(
  config: Config,
  args: { purpose: StatePurpose; binding: string; ownerId?: string; appType?: AppType; next?: string },
  now = Date.now(),
): { value: string; nonce: string } {
  const nonce = randomBytes(16).toString('base64url');
  const body = {
    p: args.purpose,
    o: args.ownerId ?? null,
    t: args.appType ?? null,
    x: args.next ?? null,
    b: args.binding,
    n: nonce,
    e: now + STATE_TTL_MS,
  };
  const payload = `v2.${Buffer.from(JSON.stringify(body)).toString('base64url')}`;
  return { value: `${payload}.${mac(config, payload)}`, nonce };
}

export type StateCheck = { ok: true; state: FlowState } | { ok: false; reason: string };

/** Verifies signature, expiry and purpose of a state that came back from a provider (binding and single use are the caller's next checks). */
export function verifyState(config: Config, value: unknown, purpose: StatePurpose, now = Date.now()): StateCheck {
  if (typeof value !== 'string' || value.length === 0) return { ok: false, reason: 'the state is missing' };
  const [v, encoded, signature] = value.split('.');
  if (v !== 'v2' || !encoded || !signature || !safeEqual(signature, mac(config, `v2.${encoded}`))) {
    return { ok: false, reason: 'the state was not issued by this service (or was altered)' };
  }
  let body: { p?: unknown; o?: unknown; t?: unknown; x?: unknown; b?: unknown; n?: unknown; e?: unknown };
  try {
    body = JSON.parse(Buffer.from(encoded, 'base64url').toString('utf8'));
  } catch {
    return { ok: false, reason: 'the state is malformed' };
  }
  if (body.p !== purpose) return { ok: false, reason: `the state belongs to a ${String(body.p)} flow, not ${purpose}` };
  const ownerOk = CONNECT.has(purpose) ? typeof body.o === 'string' && UUID.test(body.o) : body.o === null;
  if (!ownerOk || typeof body.b !== 'string' || typeof body.n !== 'string' || typeof body.e !== 'number') {
    return { ok: false, reason: 'the state is malformed' };
  }
  if (now > body.e) return { ok: false, reason: 'the state expired (these flows must finish within 10 minutes)' };
  return {
    ok: true,
    state: {
      purpose,
      ownerId: typeof body.o === 'string' ? body.o : null,
      appType: body.t === 'standard' || body.t === 'lite' ? body.t : null,
      next: typeof body.x === 'string' ? body.x : null,
      binding: body.b,
      nonce: body.n,
      expiresAtMs: body.e,
    },
  };
}

/** The PKCE code_verifier of a flow (RFC 7636: 43 characters of base64url). */
export function pkceVerifier(config: Config, nonce: string): string {
  return createHmac('sha256', key(config, 'pkce')).update(nonce).digest('base64url');
}

/** S256 code_challenge for a verifier. */
export function pkceChallenge(verifier: string): string {
  return createHash('sha256').update(verifier).digest('base64url');
}
