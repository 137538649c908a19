// Is this GitHub App installation the signed-in owner's? GitHub's setup URL carries an
// installation_id anyone can change, so an owner's installation is registered only when GitHub's
// GET /user/installations, called with that person's user-to-server token, lists it: the token from
// the `code` GitHub sends with the install (the app requests user authorization during
// installation), else the one kept from their "Sign in with GitHub". Admin is trusted and not asked.
import type { Core } from '../../lib/core';
import type { AppType } from '../../lib/config';
import { ProviderError } from '../../lib/providers/types';
import { AppError } from '../errors';
import type { IdentityService } from './identities';

type Deps = Pick<Core, 'githubUser'> & { identities: IdentityService };

/** 403 installation_not_yours, saying why and what to do. */
export const notYours = (why: string) =>
  new AppError(403, 'installation_not_yours', `This installation cannot be registered for you: ${why}`, 'installation_id');

export function createInstallationCheck(deps: Deps) {
  const { githubUser, identities } = deps;

  return {
    /** Resolves when `ownerId`'s GitHub account can see the installation, else throws installation_not_yours (nothing written). */
    async verify(args: { ownerId: string; appType: AppType; installationId: number; code?: string }): Promise<void> {
      const { ownerId, appType, installationId, code } = args;
      let token: string | null;
      let link: (() => Promise<unknown>) | undefined;
      if (code) {
        if (!githubUser.isConfigured(appType))
          throw notYours(`the ${appType} GitHub App's OAuth client is not configured on this service.`);
        const tokens = await githubUser.exchangeCode(appType, { code }).catch((err) => {
          if (err instanceof ProviderError && err.code === 'reconnect_required')
            throw notYours('GitHub refused the authorization code it sent (codes work once, within 10 minutes). Install again.');
          throw err;
        });
        const user = await githubUser.getUser(tokens.accessToken);
        const account = {
          provider: 'github' as const,
          origin: githubUser.webUrl,
          id: user.id,
          login: user.login,
          name: user.name,
          avatarUrl: user.avatarUrl,
        };
        // The person who installed is linked to the owner once the check passes; their token is kept
        // only when it is the standard app's, the one later checks use.
        link = () => identities.signIn({ ...account, ...(appType === 'standard' ? { tokens } : {}) }, ownerId);
        token = tokens.accessToken;
      } else {
        token = appType === 'standard' ? await identities.githubUserToken(ownerId) : null;
        if (!token) {
          throw notYours(
            appType === 'standard'
              ? 'your GitHub account is not known here. Sign in with GitHub (or install from the integrations page, which asks GitHub who you are), then try again.'
              : 'installations of the lite app can only be checked while installing it from the integrations page.',
          );
        }
      }
      const visible = await githubUser.canSeeInstallation(token, installationId).catch((err) => {
        if (err instanceof ProviderError && err.code === 'invalid_credentials')
          throw notYours('GitHub no longer accepts your sign-in; sign in with GitHub again.');
        throw err;
      });
      if (!visible)
        throw notYours(`GitHub does not list installation ${installationId} among the installations your GitHub account can access.`);
      if (link) {
        await link().catch((err) => {
          if ((err as AppError).code === 'account_linked_elsewhere')
            throw notYours('the GitHub account that authorized the installation belongs to another owner here.');
          throw err;
        });
      }
    },
  };
}

export type InstallationCheck = ReturnType<typeof createInstallationCheck>;
