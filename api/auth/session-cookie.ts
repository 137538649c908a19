// The dashboard's session cookie: an opaque random value whose SHA-256 keys a `sessions` row
// (session-store.ts). HttpOnly, SameSite=Lax, 12 h; `__Host-` prefixed where PUBLIC_URL is https
// (Secure, Path=/, no Domain), so no sibling subdomain can set or shadow it. SameSite, with the
// same-origin rule for cookie writes (hooks.ts), makes cross-site form posts useless (CSRF).
import { randomBytes } from 'node:crypto';
import type { Config } from '../../lib/config';

export const SESSION_TTL_MS = 12 * 60 * 60 * 1000;

const isHttps = (config: Config) => new URL(config.publicUrl).protocol === 'https:';

/** The cookie's name: `__Host-rc_session` over https, `rc_session` over plain http (local development). */
export function sessionCookieName(config: Config): string {
  return isHttps(config) ? '__Host-rc_session' : 'rc_session';
}

/** The cookie binding a provider sign-in to the browser that started it (login CSRF). */
export function loginCookieName(config: Config): string {
  return isHttps(config) ? '__Host-rc_login' : 'rc_login';
}

/** A new cookie value: 32 random bytes, base64url. */
export function newSessionValue(): string {
  return randomBytes(32).toString('base64url');
}

/** Reads one cookie from a Cookie header (RFC 6265 pairs; values are opaque here). Malformed text is no value, never an error. */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq <= 0 || part.slice(0, eq).trim() !== name) continue;
    const raw = part.slice(eq + 1).trim();
    try {
      return decodeURIComponent(raw);
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/** Set-Cookie value for the session cookie named `name` (its removal when `value` is empty). */
export function setCookie(config: Config, name: string, value: string, maxAgeMs: number): string {
  const secure = isHttps(config) ? '; Secure' : '';
  const maxAge = value ? Math.floor(maxAgeMs / 1000) : 0;
  return `${name}=${encodeURIComponent(value)}; Path=/; HttpOnly; SameSite=Lax; Max-Age=${maxAge}${secure}`;
}

/** Set-Cookie value for the session (or its removal when `value` is empty). */
export function sessionCookie(config: Config, value: string): string {
  return setCookie(config, sessionCookieName(config), value, SESSION_TTL_MS);
}
