// Sign-in for the dashboard: the login form trades the admin token for the session cookie. The
// guard that sends anonymous browsers here is the dashboard group's hook (api/auth/hooks.ts).
import type { FastifyInstance } from 'fastify';
import type { Config } from '../../lib/config';
import { adminHook } from '../auth/hooks';
import { identify, isAdminToken } from '../auth/principal';
import { safeNext } from '../auth/safe-next';
import { newSessionValue, sessionCookie } from '../auth/session-cookie';
import { html } from './html';
import { page, sendPage } from './layout';

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
    if (identify(config, req) !== null) return reply.redirect(next, 302);
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

  const admin = adminHook(config);
  app.post('/logout', { schema: hide }, async (req, reply) => {
    // A live session may only be ended from our own pages (no cross-site forced logout); an
    // expired one has nothing left to protect.
    if (identify(config, req) !== null) await admin(req, reply);
    return reply.header('set-cookie', sessionCookie(config, '')).redirect('/login', 303);
  });
}
