// Admin authentication: `Authorization: Bearer $ADMIN_API_TOKEN`, or the dashboard's session
// cookie (HttpOnly, SameSite=Lax, HMAC-signed, 12 h). Cookie-authenticated writes must come from
// our own origin, which with SameSite makes cross-site form posts useless (CSRF).
import { createHmac } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Config } from '../lib/config';
import { safeEqual } from '../lib/secrets';
import { AppError } from './errors';

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

/** True when the presented admin token matches (constant time). */
export function isAdminToken(config: Config, presented: string): boolean {
  return safeEqual(presented, config.adminApiToken);
}

/** The credentials of an `Authorization: Bearer …` header (the scheme is case-insensitive). */
export function bearerOf(header: string | undefined): string | undefined {
  const m = header ? /^bearer\s+(\S+)\s*$/i.exec(header) : null;
  return m ? m[1] : undefined;
}

function bearer(request: FastifyRequest): string | undefined {
  return bearerOf(request.headers.authorization);
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

function sameOrigin(config: Config, request: FastifyRequest): boolean {
  if (request.headers['sec-fetch-site'] === 'same-origin') return true;
  const origin = request.headers.origin ?? request.headers.referer;
  if (!origin) return false;
  try {
    const o = new URL(origin);
    return o.origin === new URL(config.publicUrl).origin || o.host === request.headers.host;
  } catch {
    return false;
  }
}

/** How the request authenticated as admin, or null. */
export function adminAuthOf(config: Config, request: FastifyRequest): 'bearer' | 'cookie' | null {
  const token = bearer(request);
  if (token !== undefined) return isAdminToken(config, token) ? 'bearer' : null;
  return verifySession(config, readCookie(request.headers.cookie, SESSION_COOKIE)) ? 'cookie' : null;
}

/** onRequest hook for management routes: 401 without admin credentials, 403 on cross-site cookie writes. */
export function requireAdmin(config: Config) {
  return async (request: FastifyRequest, _reply: FastifyReply) => {
    const how = adminAuthOf(config, request);
    if (how === null)
      throw new AppError(401, 'unauthorized', 'missing or invalid admin credentials (Authorization: Bearer <ADMIN_API_TOKEN>)', undefined, {
        'www-authenticate': 'Bearer',
      });
    if (how === 'cookie' && !SAFE_METHODS.has(request.method) && !sameOrigin(config, request)) {
      throw new AppError(403, 'csrf_rejected', 'cross-site request refused: cookie-authenticated writes must come from this site');
    }
  };
}
