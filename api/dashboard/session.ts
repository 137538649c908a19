// Sign-in for the dashboard: the login form trades the admin token for an admin session; logout
// ends the session on the server too. The guard that sends anonymous browsers here is the
// dashboard group's hook (api/auth/hooks.ts).
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { admit } from '../auth/hooks';
import { isAdminToken } from '../auth/principal';
import { safeNext } from '../auth/safe-next';
import { readCookie, sessionCookie, sessionCookieName } from '../auth/session-cookie';
import type { Services } from '../services';
import { html } from './html';
import { page, sendPage } from './layout';

/** Which provider sign-ins this service offers. */
export interface SignInOptions {
  github: boolean;
  gitlab: boolean;
}

function loginPage(next: string, offers: SignInOptions, error?: string) {
  const q = next === '/' ? '' : `?next=${encodeURIComponent(next)}`;
  const providers =
    offers.github || offers.gitlab
      ? html`<section class="card narrow" aria-labelledby="providers-h">
  <h2 id="providers-h">With your account</h2>
  <p class="actions">
    ${offers.github ? html`<a class="button primary" href="/login/github${q}">Sign in with GitHub</a>` : ''}
    ${offers.gitlab ? html`<a class="button primary" href="/login/gitlab${q}">Sign in with GitLab</a>` : ''}
  </p>
  <p class="hint">You see your own towns and integrations. The first sign-in creates your account here.</p>
</section>`
      : '';
  return page({
    title: 'Sign in',
    signedIn: false,
    body: html`<h1>Sign in</h1>
${providers}
<form method="post" action="/login" class="card narrow" aria-label="Operator sign-in">
  <h2>Operators</h2>
  <input type="hidden" name="next" value="${next}">
  <label for="token">Admin token</label>
  <input id="token" name="token" type="password" autocomplete="current-password" required ${error ? html`aria-invalid="true" aria-describedby="token-error"` : ''} autofocus>
  ${error ? html`<p class="field-error" id="token-error" role="alert">${error}</p>` : ''}
  <p class="hint">The service's <code>ADMIN_API_TOKEN</code>. The session lasts 12 hours.</p>
  <button type="submit" class="primary">Sign in</button>
</form>`,
  });
}

/** Starts a session for `ownerId` (null: admin) and sends the browser to `next` with its cookie. */
export async function startSession(
  services: Services,
  req: FastifyRequest,
  reply: FastifyReply,
  ownerId: string | null,
  next: string,
): Promise<FastifyReply> {
  // A browser signing in again (or as someone else) leaves no live session behind.
  const previous = await services.sessions.find(readCookie(req.headers.cookie, sessionCookieName(services.config)));
  if (previous) await services.sessions.end(previous.id);
  const session = await services.sessions.create({ ownerId, userAgent: req.headers['user-agent'] });
  // 303: the browser follows with a GET, so a reload does not post the credentials again.
  return reply.header('set-cookie', sessionCookie(services.config, session.value)).redirect(safeNext(next), 303);
}

/** GET/POST /login and POST /logout; `limit` is the sign-in attempts' rate limit. */
export async function sessionRoutes(
  app: FastifyInstance,
  services: Services,
  limit: (req: FastifyRequest) => Promise<void>,
): Promise<void> {
  const { config, auth } = services;
  const hide = { hide: true };
  const offers = { github: services.core.githubUser.isConfigured('standard'), gitlab: services.core.gitlab.isConfigured() };

  // `next` can hold a connect callback URL with a one-time code: keep it out of request logs.
  app.get('/login', { schema: hide, logLevel: 'warn' }, async (req, reply) => {
    const next = safeNext((req.query as Record<string, unknown>).next);
    if ((await auth.identify(req)) !== null) return reply.redirect(next, 302);
    return sendPage(reply, loginPage(next, offers));
  });

  app.post('/login', { schema: hide, preHandler: limit }, async (req, reply) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    const next = safeNext(body.next);
    const token = typeof body.token === 'string' ? body.token : '';
    if (!isAdminToken(config, token)) return sendPage(reply, loginPage(next, offers, 'That is not the admin token.'), 401);
    return startSession(services, req, reply, null, next);
  });

  app.post('/logout', { schema: hide }, async (req, reply) => {
    const principal = await auth.identify(req);
    // A live session may only be ended from our own pages (no cross-site forced logout); an
    // expired one has nothing left to protect.
    if (principal !== null) admit(config, req, principal);
    if (principal?.sessionId) await services.sessions.end(principal.sessionId);
    return reply.header('set-cookie', sessionCookie(config, '')).redirect('/login', 303);
  });
}
