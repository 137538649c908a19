// Who is calling. `identify` is the one place where credentials become a principal; each route
// group's hook (hooks.ts) calls it and stores the answer on the request, so a new kind of caller
// (an owner's session or token) is added here and its row rules keyed on `request.principal`,
// never in handlers. Containers are not principals: the pull service resolves their token.
import type { FastifyRequest } from 'fastify';
import type { Config } from '../../lib/config';
import { safeEqual } from '../../lib/secrets';
import { readCookie, SESSION_COOKIE, verifySession } from './session-cookie';

/** An authenticated caller and how it proved itself. */
export type Principal = { kind: 'admin'; via: 'bearer' | 'cookie' };

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the route group's auth hook; null on open routes (health, docs, sign-in, webhooks, containers). */
    principal: Principal | null;
  }
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

/** The principal the request's credentials prove (a bearer header wins over the cookie), or null. */
export function identify(config: Config, request: FastifyRequest): Principal | null {
  const token = bearerOf(request.headers.authorization);
  if (token !== undefined) return isAdminToken(config, token) ? { kind: 'admin', via: 'bearer' } : null;
  return verifySession(config, readCookie(request.headers.cookie, SESSION_COOKIE)) ? { kind: 'admin', via: 'cookie' } : null;
}
