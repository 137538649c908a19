// "Sign in with GitLab": OAuth with PKCE S256 and only the read_user scope, on the same OAuth
// application as the integrations (second redirect URI <PUBLIC_URL>/login/gitlab/callback). The
// access token is used once, for GET /api/v4/user, and kept nowhere.
import type { FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { ProviderError } from '../../lib/providers/types';
import { safeNext } from '../auth/safe-next';
import { pkceChallenge, pkceVerifier, signState } from '../connect/connect-state';
import { returningState } from '../connect/connect-kit';
import { AppError, providerFailure } from '../errors';
import type { Services } from '../services';
import { currentOwner, finishLogin, loginBindings, notConfigured, signInFailed, startLogin } from './sign-in-kit';

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
      if (error)
        return signInFailed(
          reply,
          error === 'access_denied' ? 'access_denied' : 'authorization_failed',
          'GitLab did not authorize the sign-in, so nobody was signed in.',
          400,
        );
      try {
        const flow = await returningState(services, state, 'gitlab-login', loginBindings(services, req), 'signing in with GitLab');
        if (!code) throw new AppError(400, 'invalid_request', 'code: is required', 'code');
        const tokens = await gitlab
          .exchangeCode({ baseUrl: config.gitlab.url, code, codeVerifier: pkceVerifier(config, flow.nonce), redirectUri })
          .catch((err) => {
            if (err instanceof ProviderError && err.code === 'reconnect_required') {
              throw new AppError(
                400,
                'invalid_grant',
                'GitLab refused the authorization code (codes work once and expire after 10 minutes). Sign in again.',
              );
            }
            throw err;
          });
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
        const known = err instanceof ProviderError ? providerFailure(err) : err instanceof AppError ? err : null;
        if (!known) throw err;
        return signInFailed(reply, known.code, known.message, known.statusCode);
      }
    },
  );
};
