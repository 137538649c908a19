// Sign-in for the dashboard: the login form trades the admin token for the session cookie, and a
// guard sends anonymous browsers to it. Writes keep requireAdmin's same-origin rule (CSRF).
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Config } from '../../lib/config';
import { adminAuthOf, isAdminToken, newSessionValue, requireAdmin, sessionCookie } from '../auth';
import { html } from './html';
import { page, sendPage } from './layout';

/** `next` when it is a path on this site, else "/" (no open redirects). */
export function safeNext(next: unknown): string {
  if (typeof next !== 'string' || !next.startsWith('/') || next.startsWith('//') || next.startsWith('/\\')) return '/';
  try {
    const url = new URL(next, 'http://local.invalid');
    return url.origin === 'http://local.invalid' ? `${url.pathname}${url.search}` : '/';
  } catch {
    return '/';
  }
}

/** onRequest hook for dashboard routes: anonymous GETs go to the login page, everything else follows requireAdmin. */
export function requireDashboardSession(config: Config) {
  const admin = requireAdmin(config);
  return async (request: FastifyRequest, reply: FastifyReply) => {
    if ((request.method === 'GET' || request.method === 'HEAD') && adminAuthOf(config, request) === null) {
      return reply.redirect(`/login?next=${encodeURIComponent(safeNext(request.url))}`, 302);
    }
    await admin(request, reply);
  };
}

function loginPage(next: string, error?: string) {
  return page({
    title: 'Sign in',
    signedIn: false,
    body: html`<h1>Sign in</h1>
<form method="post" action="/login" class="card narrow">
  <input type="hidden" name="next" value="${next}">
  <label for="token">Admin token</label>
  <input id="token" name="token" type="password" autocomplete="current-password" required ${error ? html`aria-invalid="true" aria-describedby="token-error"` : ''} autofocus>
  ${error ? html`<p class="field-error" id="token-error" role="alert">${error}</p>` : ''}
  <p class="hint">The service's <code>ADMIN_API_TOKEN</code>. The session lasts 12 hours.</p>
  <button type="submit" class="primary">Sign in</button>
</form>`,
  });
}

/** GET/POST /login and POST /logout. */
export async function sessionRoutes(app: FastifyInstance, config: Config): Promise<void> {
  const hide = { hide: true };

  // `next` can hold a connect callback URL with a one-time code: keep it out of request logs.
  app.get('/login', { schema: hide, logLevel: 'warn' }, async (req, reply) => {
    const next = safeNext((req.query as Record<string, unknown>).next);
    if (adminAuthOf(config, req) !== null) return reply.redirect(next, 302);
    return sendPage(reply, loginPage(next));
  });

  app.post('/login', { schema: hide }, async (req, reply) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    const next = safeNext(body.next);
    const token = typeof body.token === 'string' ? body.token : '';
    if (!isAdminToken(config, token)) return sendPage(reply, loginPage(next, 'That is not the admin token.'), 401);
    // 303: the browser follows with a GET, so a reload does not post the token again.
    return reply.header('set-cookie', sessionCookie(config, newSessionValue(config))).redirect(next, 303);
  });

  const admin = requireAdmin(config);
  app.post('/logout', { schema: hide }, async (req, reply) => {
    // A live session may only be ended from our own pages (no cross-site forced logout); an
    // expired one has nothing left to protect.
    if (adminAuthOf(config, req) !== null) await admin(req, reply);
    return reply.header('set-cookie', sessionCookie(config, '')).redirect('/login', 303);
  });
}
