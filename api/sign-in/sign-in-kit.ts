// What the provider sign-ins share: the short-lived cookie that binds a sign-in to the browser that
// started it (so nobody can finish their sign-in in someone else's browser), and their pages.
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ProviderError } from '../../lib/providers/types';
import { loginBinding } from '../connect/connect-state';
import { AppError, providerFailure } from '../errors';
import { loginCookieName, newSessionValue, readCookie, setCookie } from '../auth/session-cookie';
import type { Services } from '../services';
import { messagePage, sendPage } from '../dashboard/layout';
import { startSession } from '../dashboard/session';

const LOGIN_COOKIE_TTL_MS = 10 * 60 * 1000;

/** Sets a new sign-in cookie on `reply`; returns the state binding for it. */
export function startLogin(services: Services, reply: FastifyReply): string {
  const value = newSessionValue();
  reply.header('set-cookie', setCookie(services.config, loginCookieName(services.config), value, LOGIN_COOKIE_TTL_MS));
  return loginBinding(value);
}

/** The bindings the request can finish a sign-in with (none without its sign-in cookie). */
export function loginBindings(services: Services, req: FastifyRequest): string[] {
  const value = readCookie(req.headers.cookie, loginCookieName(services.config));
  return value ? [loginBinding(value)] : [];
}

/** The signed-in owner, if any: signing in with another account links it to them. */
export async function currentOwner(services: Services, req: FastifyRequest): Promise<string | null> {
  const principal = await services.auth.identify(req);
  return principal?.kind === 'owner' ? principal.ownerId : null;
}

/** Signs the browser in as `ownerId`, dropping its sign-in cookie. */
export function finishLogin(services: Services, req: FastifyRequest, reply: FastifyReply, ownerId: string, next: string | null) {
  reply.header('set-cookie', setCookie(services.config, loginCookieName(services.config), '', 0));
  return startSession(services, req, reply, ownerId, next ?? '/');
}

/** A sign-in that cannot work here (no OAuth client configured). */
export function notConfigured(reply: FastifyReply, provider: string, vars: string) {
  const page = messagePage({
    title: `Sign in with ${provider} is not available`,
    code: 'sign_in_not_configured',
    message: `This service has no ${provider} sign-in configured (${vars}).`,
    links: [{ href: '/login', label: 'Back to sign-in' }],
    signedIn: false,
  });
  return sendPage(reply, page, 404);
}

/** The provider did not authorize: our own words only, since the URL's error text is anyone's. */
export function deniedSignIn(reply: FastifyReply, provider: string, error: string) {
  return signInFailed(
    reply,
    error === 'access_denied' ? 'access_denied' : 'authorization_failed',
    `${provider} did not authorize the sign-in, so nobody was signed in.`,
    400,
  );
}

/** A sign-in that failed with one of our typed errors or a provider's; anything else is the error handler's. */
export function signInError(reply: FastifyReply, err: unknown) {
  const known = err instanceof ProviderError ? providerFailure(err) : err instanceof AppError ? err : null;
  if (!known) throw err;
  return signInFailed(reply, known.code, known.message, known.statusCode);
}

/** Shows a failed sign-in with its typed code. */
export function signInFailed(reply: FastifyReply, code: string, message: string, status: number) {
  const page = messagePage({
    title: 'Could not sign in',
    code,
    message,
    links: [{ href: '/login', label: 'Back to sign-in' }],
    signedIn: false,
  });
  return sendPage(reply, page, status);
}
