// Connecting a GitHub App installation (contract "Connect flows"): our install route → the app's
// installation page with a state → back to the setup URL, or, when the app requests user
// authorization during installation, to /login/github/callback with a `code` (sign-in-routes
// hand those here). An owner's installation is registered only after GitHub lists it for them.
import type { FastifyReply } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { ownerIdFor, ownerNamedIn } from '../auth/access';
import type { Principal } from '../auth/principal';
import { AppError, badRequest, unprocessable } from '../errors';
import type { Services } from '../services';
import * as schemas from '../schemas/connect';
import { messagePage, sendPage } from '../dashboard/layout';
import { sessionBinding, signState } from './connect-state';
import { connected, failed, returningState, syncQuietly } from './connect-kit';

const TITLE = 'Could not connect GitHub';

export interface SetupReturn {
  installation_id?: number;
  setup_action?: string;
  state?: string;
  code?: string;
}

/** Finishes an installation that came back from GitHub (setup URL or callback URL) for `principal`. */
export async function finishGithubInstall(
  services: Services,
  principal: Principal,
  q: SetupReturn,
  reply: FastifyReply,
): Promise<FastifyReply> {
  const { installation_id, setup_action, state, code } = q;
  if (setup_action === 'request') {
    const page = messagePage({
      title: 'Installation requested',
      message:
        'GitHub sent the installation request to an owner of the account. Once they approve it, connect again from the integrations page to register it.',
      links: [{ href: '/', label: 'Back to the dashboard' }],
    });
    return sendPage(reply, page, 202);
  }
  let ownerId: string;
  let appType: 'standard' | 'lite';
  /** The installation is already the caller's: nothing to check, and no `code` is used. */
  let registered = false;
  if (!state && setup_action === 'update' && installation_id) {
    // "Redirect on update" brings people back without a state after they change the repository
    // selection on GitHub: an installation already registered to the caller is refreshed. Such a
    // return is bound to no session (anyone can send a signed-in person to it), so a `code` on it
    // may be someone else's: exchanging it would link that GitHub account to the caller, who could
    // then be signed in as by its holder. It is ignored; the installation needs no check.
    const known = await services.integrations.findByInstallation(installation_id);
    if (!known || (principal.kind === 'owner' && known.ownerId !== principal.ownerId)) {
      return failed(
        reply,
        new AppError(
          400,
          'invalid_state',
          'Cannot finish connecting GitHub: the state is missing. Start again from the integrations page.',
          'state',
        ),
        null,
        TITLE,
      );
    }
    [ownerId, appType] = [known.ownerId, known.githubAppType ?? 'standard'];
    registered = true;
  } else {
    try {
      const flow = await returningState(services, state, 'github', [sessionBinding(principal)], 'connecting GitHub');
      [ownerId, appType] = [flow.ownerId!, flow.appType ?? 'standard'];
    } catch (err) {
      return failed(reply, err, null, TITLE);
    }
  }
  if (!installation_id) return failed(reply, badRequest('installation_id', 'installation_id: is required'), ownerId, TITLE);
  try {
    if (principal.kind === 'owner' && !registered)
      await services.installationCheck.verify({ ownerId, appType, installationId: installation_id, code });
    const result = await services.integrations.registerGithub({
      provider: 'github',
      owner_id: ownerId,
      installation_id,
      app_type: appType,
    });
    await syncQuietly(services, result.integration.id);
    return connected(reply, ownerId, result);
  } catch (err) {
    return failed(reply, err, ownerId, TITLE);
  }
}

export const githubConnectRoutes: FastifyPluginAsyncZod<{ services: Services }> = async (app, { services }) => {
  const { github } = services.core;
  const tags = ['connect'];

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
        const err = unprocessable(
          'app_not_configured',
          `The ${app_type} GitHub App is not configured on this service (set ${vars}).`,
          'app_type',
        );
        return failed(reply, err, owner_id, 'GitHub App not configured');
      }
      const state = signState(services.config, {
        purpose: 'github',
        ownerId: owner_id,
        appType: app_type,
        binding: sessionBinding(req.principal!),
      });
      return reply.redirect(github.installUrl(app_type, state.value), 302);
    },
  );

  app.get(
    '/integrations/github/setup',
    {
      config: ownerNamedIn(),
      // The URL carries the state (and maybe a code): keep it out of request logs.
      logLevel: 'warn',
      schema: {
        tags,
        summary: "GitHub's setup URL: checks the state (and, for owners, that the installation is theirs), then registers it",
        querystring: schemas.githubSetupQuery,
      },
    },
    async (req, reply) => finishGithubInstall(services, req.principal!, req.query, reply),
  );
};
