// "Sign in with GitLab": OAuth with PKCE S256 and only the read_user scope, on the same OAuth
// application as the integrations (second redirect URI <PUBLIC_URL>/login/gitlab/callback). The
// access token is used once, for GET /api/v4/user, and kept nowhere.
import type { FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { safeNext } from '../auth/safe-next';
import { pkceChallenge, pkceVerifier, signState } from '../connect/connect-state';
import { exchangeGitlabCode, returningState } from '../connect/connect-kit';
import { AppError } from '../errors';
import type { Services } from '../services';
import { currentOwner, deniedSignIn, finishLogin, loginBindings, notConfigured, signInError, startLogin } from './sign-in-kit';

const startQuery = z.object({ next: z.string().max(2000).optional() });
const callbackQuery = z.object({
  code: z.string().max(2000).optional(),
  state: z.string().max(2000).optional(),
  error: z.string().max(200).optional(),
  error_description: z.string().max(2000).optional(),
});

export const gitlabSignInRoutes: FastifyPluginAsyncZod<{ services: Services; limit: (req: FastifyRequest) => Promise<void> }> = async (
  app,
  { services, limit },
) => {
  const { config } = services;
  const { gitlab } = services.core;
  const redirectUri = `${config.publicUrl}/login/gitlab/callback`;

  app.get('/login/gitlab', { schema: { hide: true, querystring: startQuery } }, async (req, reply) => {
    if (!gitlab.isConfigured()) return notConfigured(reply, 'GitLab', 'GITLAB_CLIENT_ID and GITLAB_CLIENT_SECRET');
    const binding = startLogin(services, reply);
    const state = signState(config, { purpose: 'gitlab-login', next: safeNext(req.query.next), binding });
    const codeChallenge = pkceChallenge(pkceVerifier(config, state.nonce));
    return reply.redirect(
      gitlab.authorizeUrl({ baseUrl: config.gitlab.url, state: state.value, codeChallenge, redirectUri, scope: 'read_user' }),
      302,
    );
  });

  app.get(
    '/login/gitlab/callback',
    // The URL carries a one-time code and the state: keep it out of request logs.
    { schema: { hide: true, querystring: callbackQuery }, logLevel: 'warn', preHandler: limit },
    async (req, reply) => {
      const { code, state, error } = req.query;
      if (error) return deniedSignIn(reply, 'GitLab', error);
      try {
        const flow = await returningState(services, state, 'gitlab-login', loginBindings(services, req), 'signing in with GitLab');
        if (!code) throw new AppError(400, 'invalid_request', 'code: is required', 'code');
        const tokens = await exchangeGitlabCode(services, { code, nonce: flow.nonce, redirectUri }, 'Sign in again.');
        const user = await gitlab.getUser({ baseUrl: config.gitlab.url, accessToken: tokens.accessToken });
        const ownerId = await services.identities.signIn(
          {
            provider: 'gitlab',
            origin: config.gitlab.url,
            id: user.id,
            login: user.username,
            name: user.name ?? null,
            avatarUrl: user.avatarUrl ?? null,
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
