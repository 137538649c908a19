// Connecting a GitLab account (contract "Connect flows"): OAuth with PKCE S256 to
// <GITLAB_URL>/oauth/authorize and back to /integrations/gitlab/callback, which exchanges the code
// and registers the grant through the same path as POST /api/integrations.
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { ownerIdFor, ownerNamedIn } from '../auth/access';
import { badRequest, unprocessable } from '../errors';
import type { Services } from '../services';
import * as schemas from '../schemas/connect';
import { messagePage, sendPage } from '../dashboard/layout';
import { pkceChallenge, pkceVerifier, sessionBinding, signState, verifyState } from './connect-state';
import { connected, exchangeGitlabCode, failed, integrationsUrl, returningState, syncQuietly } from './connect-kit';

const TITLE = 'Could not connect GitLab';

export const gitlabConnectRoutes: FastifyPluginAsyncZod<{ services: Services }> = async (app, { services }) => {
  const { config } = services;
  const { gitlab } = services.core;
  const redirectUri = `${config.publicUrl}/integrations/gitlab/callback`;
  const tags = ['connect'];

  app.get(
    '/integrations/gitlab/connect',
    {
      config: ownerNamedIn('query'),
      schema: {
        tags,
        summary: 'Start GitLab OAuth: 302 to <GITLAB_URL>/oauth/authorize with PKCE S256 and a signed state',
        querystring: schemas.gitlabConnectQuery,
      },
    },
    async (req, reply) => {
      const owner_id = ownerIdFor(req.principal, req.query.owner_id);
      if (!gitlab.isConfigured()) {
        const err = unprocessable(
          'app_not_configured',
          'GitLab OAuth is not configured on this service (set GITLAB_CLIENT_ID and GITLAB_CLIENT_SECRET).',
        );
        return failed(reply, err, owner_id, 'GitLab not configured');
      }
      const state = signState(config, { purpose: 'gitlab', ownerId: owner_id, binding: sessionBinding(req.principal!) });
      const codeChallenge = pkceChallenge(pkceVerifier(config, state.nonce));
      return reply.redirect(gitlab.authorizeUrl({ baseUrl: config.gitlab.url, state: state.value, codeChallenge, redirectUri }), 302);
    },
  );

  app.get(
    '/integrations/gitlab/callback',
    {
      config: ownerNamedIn(),
      // The URL carries the state and a one-time code: keep it out of request logs.
      logLevel: 'warn',
      schema: {
        tags,
        summary: 'GitLab OAuth redirect URI: checks the state, exchanges the code and registers the grant',
        querystring: schemas.gitlabCallbackQuery,
      },
    },
    async (req, reply) => {
      const { code, state, error } = req.query;
      const principal = req.principal!;
      if (error) {
        // Only our own words: `error` and error_description come from the URL, which anyone can craft.
        const message =
          error === 'access_denied'
            ? 'GitLab access was denied, so nothing was connected. To connect, start again and choose Authorize.'
            : 'GitLab did not authorize the application, so nothing was connected.';
        // The state still says whose integrations to go back to (it is not used up by a refusal).
        const check = verifyState(config, state, 'gitlab');
        const ownerId = check.ok ? check.state.ownerId : principal.kind === 'owner' ? principal.ownerId : null;
        const links = ownerId
          ? [
              { href: `/integrations/gitlab/connect?owner_id=${ownerId}`, label: 'Try again' },
              { href: integrationsUrl(ownerId), label: 'Back to integrations' },
            ]
          : [{ href: '/integrations', label: 'Back to integrations' }];
        const code = error === 'access_denied' ? 'access_denied' : 'authorization_failed';
        return sendPage(reply, messagePage({ title: 'GitLab access denied', code, message, links }), 400);
      }
      let ownerId: string;
      let nonce: string;
      try {
        const flow = await returningState(services, state, 'gitlab', [sessionBinding(principal)], 'connecting GitLab');
        [ownerId, nonce] = [flow.ownerId!, flow.nonce];
      } catch (err) {
        return failed(reply, err, null, TITLE);
      }
      if (!code) return failed(reply, badRequest('code', 'code: is required'), ownerId, TITLE);
      try {
        const tokens = await exchangeGitlabCode(services, { code, nonce, redirectUri }, 'Connect again.');
        const result = await services.integrations.registerGitlab({
          provider: 'gitlab',
          owner_id: ownerId,
          access_token: tokens.accessToken,
          refresh_token: tokens.refreshToken,
          expires_at: tokens.expiresAt,
        });
        await syncQuietly(services, result.integration.id);
        return connected(reply, ownerId, result);
      } catch (err) {
        return failed(reply, err, ownerId, TITLE);
      }
    },
  );
};
