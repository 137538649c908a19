// "Sign in with GitHub": the standard GitHub App's user authorization (web flow). GET /login/github
// → <web>/login/oauth/authorize → /login/github/callback, which trades the code for the person's
// user-to-server pair (kept encrypted for installation checks), reads GET /user and signs the
// browser in as the owner linked to that account (created on first sign-in). With "Request user
// authorization during installation", GitHub also sends installs here: those go to the connect flow.
import type { FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { safeNext } from '../auth/safe-next';
import { signState } from '../connect/connect-state';
import { returningState } from '../connect/connect-kit';
import { finishGithubInstall } from '../connect/github-connect';
import { AppError } from '../errors';
import type { Services } from '../services';
import {
  currentOwner,
  deniedSignIn,
  finishLogin,
  loginBindings,
  notConfigured,
  signInError,
  signInFailed,
  startLogin,
} from './sign-in-kit';

const startQuery = z.object({ next: z.string().max(2000).optional() });
const callbackQuery = z.object({
  code: z.string().max(200).optional(),
  state: z.string().max(2000).optional(),
  error: z.string().max(200).optional(),
  installation_id: z.coerce.number({ error: 'must be a number' }).int().positive().max(Number.MAX_SAFE_INTEGER).optional(),
  setup_action: z.string().max(50).optional(),
});

export const githubSignInRoutes: FastifyPluginAsyncZod<{ services: Services; limit: (req: FastifyRequest) => Promise<void> }> = async (
  app,
  { services, limit },
) => {
  const { githubUser } = services.core;
  const redirectUri = `${services.config.publicUrl}/login/github/callback`;

  app.get('/login/github', { schema: { hide: true, querystring: startQuery } }, async (req, reply) => {
    if (!githubUser.isConfigured('standard')) return notConfigured(reply, 'GitHub', 'GITHUB_APP_CLIENT_ID and GITHUB_APP_CLIENT_SECRET');
    const binding = startLogin(services, reply);
    const state = signState(services.config, { purpose: 'github-login', next: safeNext(req.query.next), binding });
    return reply.redirect(githubUser.authorizeUrl({ state: state.value, redirectUri }), 302);
  });

  app.get(
    '/login/github/callback',
    // The URL carries a one-time code and the state: keep it out of request logs.
    { schema: { hide: true, querystring: callbackQuery }, logLevel: 'warn', preHandler: limit },
    async (req, reply) => {
      const { code, state, error, installation_id, setup_action } = req.query;
      if (installation_id !== undefined || setup_action !== undefined) {
        const principal = await services.auth.identify(req);
        if (!principal)
          return signInFailed(reply, 'unauthorized', 'Sign in, then install the GitHub App again from the integrations page.', 401);
        return finishGithubInstall(services, principal, { installation_id, setup_action, state, code }, reply);
      }
      if (error) return deniedSignIn(reply, 'GitHub', error);
      try {
        const flow = await returningState(services, state, 'github-login', loginBindings(services, req), 'signing in with GitHub');
        if (!code) throw new AppError(400, 'invalid_request', 'code: is required', 'code');
        const tokens = await githubUser.exchangeCode('standard', { code, redirectUri });
        const user = await githubUser.getUser(tokens.accessToken);
        const ownerId = await services.identities.signIn(
          {
            provider: 'github',
            origin: githubUser.webUrl,
            id: user.id,
            login: user.login,
            name: user.name,
            avatarUrl: user.avatarUrl,
            tokens,
          },
          await currentOwner(services, req),
        );
        return finishLogin(services, req, reply, ownerId, flow.next);
      } catch (err) {
        return signInError(reply, err);
      }
    },
  );
};
