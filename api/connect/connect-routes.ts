// Browser connect flows (contract "Connect flows (browser)"): GitHub App installation and GitLab
// OAuth (PKCE S256). Both end in the same registration path as POST /api/integrations.
import type { FastifyReply } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { ProviderError } from '../../lib/providers/types';
import { ownerIdFor, ownerNamedIn } from '../auth/access';
import { AppError, badRequest, providerFailure, unprocessable } from '../errors';
import type { Services } from '../services';
import * as schemas from '../schemas/connect';
import { messagePage, sendPage } from '../dashboard/layout';
import { pkceChallenge, pkceVerifier, signState, verifyState } from './connect-state';

const tags = ['connect'];
// Callback URLs carry the state (and GitLab's one-time code): keep them out of request logs.
const quiet = 'warn' as const;

const integrationsUrl = (ownerId: string) => `/integrations?owner_id=${encodeURIComponent(ownerId)}`;

export const connectRoutes: FastifyPluginAsyncZod<{ services: Services }> = async (app, { services }) => {
  const { config } = services;
  const { github, gitlab } = services.core;
  const gitlabRedirectUri = `${config.publicUrl}/integrations/gitlab/callback`;

  /** Shows a failed connect with its typed code and a way back to the owner's integrations. */
  function failed(reply: FastifyReply, err: unknown, ownerId: string | null, title: string) {
    const known = err instanceof ProviderError ? providerFailure(err) : err instanceof AppError ? err : null;
    if (!known) throw err;
    const links = ownerId
      ? [{ href: integrationsUrl(ownerId), label: 'Back to integrations' }]
      : [{ href: '/', label: 'Back to the dashboard' }];
    return sendPage(reply, messagePage({ title, code: known.code, message: known.message, links }), known.statusCode);
  }

  /** Fills the repository cache right away so the integrations page and the picker show it; a failure here is shown there. */
  async function syncQuietly(integrationId: string) {
    try {
      await services.integrations.syncRepositories(await services.integrations.get(integrationId));
    } catch (err) {
      app.log.warn({ integrationId, code: (err as { code?: string }).code }, 'repository sync after connect failed');
    }
  }

  function connected(reply: FastifyReply, ownerId: string, result: { created: boolean; integration: { id: string } }) {
    return reply.redirect(
      `${integrationsUrl(ownerId)}&connected=${result.integration.id}&result=${result.created ? 'created' : 'updated'}`,
      303,
    );
  }

  app.get(
    '/integrations/github/install',
    {
      config: ownerNamedIn('query'),
      schema: {
        tags,
        summary: "Start a GitHub App installation: 302 to the app's installation page with a signed state",
        querystring: schemas.githubInstallQuery,
      },
    },
    async (req, reply) => {
      const { app_type } = req.query;
      const owner_id = ownerIdFor(req.principal, req.query.owner_id);
      if (!github.hasApp(app_type)) {
        const vars =
          app_type === 'lite'
            ? 'GITHUB_LITE_APP_ID, GITHUB_LITE_APP_PRIVATE_KEY, GITHUB_LITE_APP_SLUG'
            : 'GITHUB_APP_ID, GITHUB_APP_PRIVATE_KEY, GITHUB_APP_SLUG';
        return failed(
          reply,
          unprocessable('app_not_configured', `The ${app_type} GitHub App is not configured on this service (set ${vars}).`, 'app_type'),
          owner_id,
          'GitHub App not configured',
        );
      }
      const state = signState(config, { provider: 'github', ownerId: owner_id, appType: app_type });
      return reply.redirect(github.installUrl(app_type, state.value), 302);
    },
  );

  app.get(
    '/integrations/github/setup',
    {
      config: ownerNamedIn(),
      logLevel: quiet,
      schema: {
        tags,
        summary: "GitHub's setup URL: verifies the state and registers the installation",
        querystring: schemas.githubSetupQuery,
      },
    },
    async (req, reply) => {
      const { installation_id, setup_action, state } = req.query;
      const title = 'Could not connect GitHub';
      if (setup_action === 'request') {
        const page = messagePage({
          title: 'Installation requested',
          message:
            'GitHub sent the installation request to an owner of the account. Once they approve it, connect again from the integrations page to register it.',
          links: [{ href: '/', label: 'Back to the dashboard' }],
        });
        return sendPage(reply, page, 202);
      }
      const check = verifyState(config, state, 'github');
      let ownerId: string;
      let appType: 'standard' | 'lite';
      if (check.ok) {
        ({ ownerId } = check.state);
        appType = check.state.appType ?? 'standard';
      } else {
        // "Redirect on update" brings people back here without a state after they change the
        // repository selection on GitHub; an installation we already know keeps its owner.
        const known =
          installation_id && !state && setup_action === 'update' ? await services.integrations.findByInstallation(installation_id) : null;
        if (!known)
          return failed(
            reply,
            new AppError(
              400,
              'invalid_state',
              `Cannot finish connecting GitHub: ${check.reason}. Start again from the integrations page.`,
              'state',
            ),
            null,
            title,
          );
        ownerId = known.ownerId;
        appType = known.githubAppType ?? 'standard';
      }
      if (!installation_id) return failed(reply, badRequest('installation_id', 'installation_id: is required'), ownerId, title);
      try {
        const result = await services.integrations.registerGithub({
          provider: 'github',
          owner_id: ownerId,
          installation_id,
          app_type: appType,
        });
        await syncQuietly(result.integration.id);
        return connected(reply, ownerId, result);
      } catch (err) {
        return failed(reply, err, ownerId, title);
      }
    },
  );

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
        return failed(
          reply,
          unprocessable(
            'app_not_configured',
            'GitLab OAuth is not configured on this service (set GITLAB_CLIENT_ID and GITLAB_CLIENT_SECRET).',
          ),
          owner_id,
          'GitLab not configured',
        );
      }
      const state = signState(config, { provider: 'gitlab', ownerId: owner_id });
      const codeChallenge = pkceChallenge(pkceVerifier(config, state.nonce));
      return reply.redirect(
        gitlab.authorizeUrl({ baseUrl: config.gitlab.url, state: state.value, codeChallenge, redirectUri: gitlabRedirectUri }),
        302,
      );
    },
  );

  app.get(
    '/integrations/gitlab/callback',
    {
      config: ownerNamedIn(),
      logLevel: quiet,
      schema: {
        tags,
        summary: 'GitLab OAuth redirect URI: verifies the state, exchanges the code and registers the grant',
        querystring: schemas.gitlabCallbackQuery,
      },
    },
    async (req, reply) => {
      const { code, state, error } = req.query;
      const check = verifyState(config, state, 'gitlab');
      const ownerId = check.ok ? check.state.ownerId : null;
      const title = 'Could not connect GitLab';
      if (error) {
        // Only our own words: error_description comes from the URL, which anyone can craft.
        const message =
          error === 'access_denied'
            ? 'GitLab access was denied, so nothing was connected. To connect, start again and choose Authorize.'
            : 'GitLab did not authorize the application, so nothing was connected.';
        const links = ownerId
          ? [
              { href: `/integrations/gitlab/connect?owner_id=${ownerId}`, label: 'Try again' },
              { href: integrationsUrl(ownerId), label: 'Back to integrations' },
            ]
          : [];
        return sendPage(reply, messagePage({ title: 'GitLab access denied', code: error, message, links }), 400);
      }
      if (!check.ok)
        return failed(
          reply,
          new AppError(
            400,
            'invalid_state',
            `Cannot finish connecting GitLab: ${check.reason}. Start again from the integrations page.`,
            'state',
          ),
          null,
          title,
        );
      if (!code) return failed(reply, badRequest('code', 'code: is required'), ownerId, title);
      try {
        const tokens = await gitlab
          .exchangeCode({
            baseUrl: config.gitlab.url,
            code,
            codeVerifier: pkceVerifier(config, check.state.nonce),
            redirectUri: gitlabRedirectUri,
          })
          .catch((err) => {
            // invalid_grant on a code exchange is about this code, not a grant to reconnect.
            if (err instanceof ProviderError && err.code === 'reconnect_required') {
              throw new AppError(
                400,
                'invalid_grant',
                'GitLab refused the authorization code (codes work once and expire after 10 minutes). Connect again.',
              );
            }
            throw err;
          });
        const result = await services.integrations.registerGitlab({
          provider: 'gitlab',
          owner_id: check.state.ownerId,
          access_token: tokens.accessToken,
          refresh_token: tokens.refreshToken,
          expires_at: tokens.expiresAt,
        });
        await syncQuietly(result.integration.id);
        return connected(reply, check.state.ownerId, result);
      } catch (err) {
        return failed(reply, err, ownerId, title);
      }
    },
  );
};
