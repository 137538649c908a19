// The dashboard's session cookie: HttpOnly, SameSite=Lax, HMAC-signed, 12 h. SameSite, with the
// same-origin rule for cookie writes (hooks.ts), makes cross-site form posts useless (CSRF).
import { createHmac } from 'node:crypto';
import type { Config } from '../../lib/config';
import { safeEqual } from '../../lib/secrets';

export const SESSION_COOKIE = 'rc_session';
const SESSION_TTL_MS = 12 * 60 * 60 * 1000;

/** Sessions are keyed by the admin token and secrets key: rotating either signs everyone out. */
function sessionKey(config: Config): Buffer {
  return createHmac('sha256', config.secretsKeys[0]).update(`session:${config.adminApiToken}`).digest();
}

/** A new session cookie value. */
export function newSessionValue(config: Config, now = Date.now()): string {
  const payload = `v1.${now}`;
  return `${payload}.${createHmac('sha256', sessionKey(config)).update(payload).digest('base64url')}`;
}

/** True when `value` is a session we issued that has not expired. */
export function verifySession(config: Config, value: string | undefined, now = Date.now()): boolean {
  if (!value) return false;
  const [v, issued, mac] = value.split('.');
  if (v !== 'v1' || !/^\d+$/.test(issued ?? '') || !mac) return false;
  const expected = createHmac('sha256', sessionKey(config)).update(`v1.${issued}`).digest('base64url');
  return safeEqual(mac, expected) && now - Number(issued) < SESSION_TTL_MS && Number(issued) <= now + 60_000;
}

/** Reads one cookie from a Cookie header (RFC 6265 pairs; values are opaque here). */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return decodeURIComponent(part.slice(eq + 1).trim());
  }
  return undefined;
}

/** Set-Cookie value for the session (or its removal when `value` is empty). */
export function sessionCookie(config: Config, value: string): string {
  const secure = new URL(config.publicUrl).protocol === 'https:' ? '; Secure' : '';
  const maxAge = value ? Math.floor(SESSION_TTL_MS / 1000) : 0;
  return `${SESSION_COOKIE}=${encodeURIComponent(value)}; Path=/; HttpOnly; SameSite=Lax; Max-Age=${maxAge}${secure}`;
}
