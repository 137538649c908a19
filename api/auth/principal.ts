// Who is calling. `identify` is the one place where credentials become a principal; each route
// group's hook (hooks.ts) calls it and stores the answer on the request, and the group's access
// rule (access.ts) decides from it which rows the caller reaches, never the handlers. Containers
// are not principals: the pull service resolves their token.
import type { FastifyRequest } from 'fastify';
import type { Config } from '../../lib/config';
import { safeEqual } from '../../lib/secrets';
import type { OwnerTokenStore } from './owner-tokens';
import { readCookie, sessionCookieName } from './session-cookie';
import type { SessionStore } from './session-store';

/** An authenticated caller and how it proved itself (`sessionId` when by cookie). */
export type Principal =
  | { kind: 'admin'; via: 'bearer' | 'cookie'; sessionId?: string }
  | { kind: 'owner'; ownerId: string; via: 'token' | 'cookie'; sessionId?: string };

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

export interface Authenticator {
  /** The principal the request's credentials prove (a bearer header wins over the cookie), or null. */
  identify(request: FastifyRequest): Promise<Principal | null>;
}

export function createAuthenticator(deps: { config: Config; sessions: SessionStore; ownerTokens: OwnerTokenStore }): Authenticator {
  const { config, sessions, ownerTokens } = deps;
  const cookieName = sessionCookieName(config);
  return {
    async identify(request) {
      const token = bearerOf(request.headers.authorization);
      if (token !== undefined) {
        if (isAdminToken(config, token)) return { kind: 'admin', via: 'bearer' };
        const owner = await ownerTokens.find(token);
        return owner ? { kind: 'owner', ownerId: owner.ownerId, via: 'token' } : null;
      }
      const session = await sessions.find(readCookie(request.headers.cookie, cookieName));
      if (!session) return null;
      return session.ownerId === null
        ? { kind: 'admin', via: 'cookie', sessionId: session.id }
        : { kind: 'owner', ownerId: session.ownerId, via: 'cookie', sessionId: session.id };
    },
  };
}
