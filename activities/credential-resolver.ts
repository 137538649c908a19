// Decides where a dispatch's next token comes from and gets it. Precedence: the rig's integration;
// else the town's static token for the rig's git host; else `no_credentials`. A rig connected
// through an integration never silently falls back to a town token: when the integration fails,
// the dispatch says why (least privilege beats a surprise switch to a broader static token).
// A GitLab rig gets its project access token; only where GitLab refuses one does the account-wide
// grant stand in, labelled `account` with the reason.
import type { Db } from '../lib/db';
import { revokeBestEffort } from '../lib/dispatch-revocation';
import { gitHost } from '../lib/git-host';
import { IntegrationUnavailableError, type GitlabGrants } from '../lib/gitlab-grant';
import { setIntegrationStatus } from '../lib/integration-status';
import { DispatchEndedError, type Credential } from '../lib/lease-store';
import type { Metrics } from '../lib/metrics';
import type { ProjectTokens } from '../lib/project-tokens';
import type { GithubClient, RepoAccess } from '../lib/providers/types';
import { ProviderError } from '../lib/providers/types';
import type { RevocationQueue } from '../lib/revocation-queue';
import type { SecretBox } from '../lib/secrets';
import { townTokenContext } from '../lib/secret-contexts';
import { FailureType, type FailureCode } from '../workflows/failure-types';
import { defaultUsernameForHost, GITHUB_GIT_USERNAME, GITLAB_GIT_USERNAME } from './credential-fns';

/** A failure that no retry can fix; `code` is one of the contract's typed codes. */
export class CredentialError extends Error {
  constructor(
    readonly code: FailureCode,
    message: string,
  ) {
    super(message);
    this.name = 'CredentialError';
  }
}

export interface ResolvedCredential extends Credential {
  provider: 'github' | 'gitlab' | 'town';
}

export interface ResolverDeps {
  db: Db;
  secrets: SecretBox;
  github: Pick<GithubClient, 'mintInstallationToken' | 'verifyInstallationToken' | 'revokeInstallationToken' | 'getInstallation'>;
  gitlabGrants: Pick<GitlabGrants, 'getValidAccessToken'>;
  projectTokens: Pick<ProjectTokens, 'forRig'>;
  /** GitHub tokens whose revocation failed, kept for the worker's retries. */
  revocations: Pick<RevocationQueue, 'enqueue'>;
  metrics?: Pick<Metrics, 'revocations'>;
  /** Refresh margin: a shared GitLab token with less than this left is refreshed first. */
  marginSeconds: number;
  /** Called when a provider showed that a stored integration status is stale (the asking dispatch knows already). */
  onIntegrationStatusChanged?: (integrationId: string, status: string, askingDispatchId: string) => Promise<void>;
}

/** Resolves and obtains the credential for a dispatch's rig. */
export async function resolveCredential(
  deps: ResolverDeps,
  dispatchId: string,
  opts: { minValiditySeconds?: number } = {},
): Promise<ResolvedCredential> {
  // Raw SQL: this runs once per refresh of every dispatch (see lib/lease-store.ts on the cost).
  const [rig] = await deps.db.$queryRaw<RigRow[]>`
    SELECT r.id AS rig_id, r.name AS rig_name, r.town_id, r.git_url, r.repository_id, r.access::text AS access, i.id AS integration_id,
           i.provider::text AS provider, i.status::text AS status, i.github_installation_id, i.github_app_type::text AS github_app_type,
           i.gitlab_base_url
    FROM agent_dispatches d JOIN gastown_rigs r ON r.id = d.rig_id
    LEFT JOIN platform_integrations i ON i.id = r.platform_integration_id
    WHERE d.id = ${dispatchId}::uuid`;
  if (!rig) throw new DispatchEndedError(dispatchId);

  if (rig.integration_id) {
    const integration: IntegrationRow = {
      id: rig.integration_id,
      status: rig.status!,
      githubInstallationId: rig.github_installation_id,
      githubAppType: rig.github_app_type,
    };
    if (rig.provider === 'github') return mintGithub(deps, dispatchId, integration, rig.repository_id, rig.access);
    return gitlabToken(deps, dispatchId, integration, rig, Math.max(deps.marginSeconds, opts.minValiditySeconds ?? 0));
  }

  const host = gitHost(rig.git_url);
  const [townToken] = await deps.db.$queryRaw<Array<{ token_enc: string; username: string | null }>>`
    SELECT token_enc, username FROM town_git_auth WHERE town_id = ${rig.town_id}::uuid AND host = ${host}`;
  if (!townToken) {
    throw new CredentialError(FailureType.noCredentials, `rig has no integration and the town has no git-auth token for ${host}`);
  }
  return {
    token: deps.secrets.decrypt(townToken.token_enc, townTokenContext(rig.town_id, host)),
    expiresAt: null,
    username: townToken.username ?? defaultUsernameForHost(host),
    source: 'town_git_auth',
    scope: 'static',
    scopeReason: null,
    integrationId: null,
    provider: 'town',
    revocable: false,
  };
}

interface RigRow {
  rig_id: string;
  rig_name: string;
  town_id: string;
  git_url: string;
  repository_id: bigint | null;
  access: RepoAccess;
  integration_id: string | null;
  provider: 'github' | 'gitlab' | null;
  status: string | null;
  github_installation_id: bigint | null;
  github_app_type: 'standard' | 'lite' | null;
  gitlab_base_url: string | null;
}

interface IntegrationRow {
  id: string;
  status: string;
  githubInstallationId: bigint | null;
  githubAppType: 'standard' | 'lite' | null;
}

async function mintGithub(
  deps: ResolverDeps,
  dispatchId: string,
  integration: IntegrationRow,
  repositoryId: bigint | null,
  access: RepoAccess,
): Promise<ResolvedCredential> {
  // Uninstalled installations never come back (ids are not reused); every other status is
  // checked with GitHub itself, so a missed unsuspend webhook heals on the next attempt.
  if (integration.status === 'deleted') {
    throw new CredentialError(FailureType.installationNotFound, 'the GitHub App was uninstalled from this account');
  }
  if (integration.githubInstallationId === null || integration.githubAppType === null) {
    throw new CredentialError(FailureType.installationNotFound, 'integration has no GitHub installation');
  }
  if (repositoryId === null) {
    throw new CredentialError(FailureType.repositoryNotAccessible, 'rig has no repository id: reconnect it to a repository');
  }
  const appType = integration.githubAppType;
  const installationId = Number(integration.githubInstallationId);
  // A lite app's tokens only read, whatever the rig says.
  const effective: RepoAccess = appType === 'lite' ? 'read' : access;
  try {
    // A read rig's token gets `contents: read` even from the standard app (a lite app's are read-only anyway).
    const minted = await deps.github.mintInstallationToken(appType, installationId, [Number(repositoryId)], effective);
    try {
      await deps.github.verifyInstallationToken(minted.token);
      // A working token shows the installation is active again (a missed unsuspend webhook).
      if (integration.status !== 'active') await noteStatus(deps, dispatchId, integration.id, 'active', null);
    } catch (err) {
      // A token we will not hand out must not stay alive for an hour: one attempt here (this runs
      // inside the mint's time limit), then the worker's retries.
      await revokeBestEffort(deps, { token: minted.token, expiresAt: minted.expiresAt, dispatchId, reason: 'failed its check call' }, 1);
      throw err;
    }
    return {
      token: minted.token,
      expiresAt: minted.expiresAt,
      username: GITHUB_GIT_USERNAME,
      source: 'integration',
      scope: 'repository',
      scopeReason: null,
      integrationId: integration.id,
      provider: 'github',
      revocable: true,
      access: effective,
    };
  } catch (err) {
    if (err instanceof ProviderError && err.code === 'installation_suspended')
      await noteStatus(deps, dispatchId, integration.id, 'suspended', err.message);
    if (err instanceof ProviderError && err.code === 'installation_not_found') {
      // `deleted` is final, so one 404 from the token endpoint is not enough: ask for the
      // installation itself. Only a second 404 marks it; anything else is a passing failure.
      const gone = await deps.github.getInstallation(appType, installationId).then(
        () => false,
        (e) => e instanceof ProviderError && e.code === 'installation_not_found',
      );
      if (!gone)
        throw new ProviderError(
          'provider_unavailable',
          'GitHub answered 404 for a token of an installation that exists; retrying',
          err.status,
        );
      await noteStatus(deps, dispatchId, integration.id, 'deleted', err.message);
    }
    throw err;
  }
}

async function gitlabToken(
  deps: ResolverDeps,
  dispatchId: string,
  integration: IntegrationRow,
  rig: RigRow,
  minValiditySeconds: number,
): Promise<ResolvedCredential> {
  if (integration.status === 'deleted') throw new CredentialError(FailureType.installationNotFound, 'the GitLab integration was deleted');
  // A project token outlives a grant its owner revoked; the integration's status still rules.
  if (integration.status === 'reconnect_required') {
    throw new IntegrationUnavailableError('reconnect_required', 'GitLab grant was revoked or expired: reconnect the integration');
  }
  const base = {
    username: GITLAB_GIT_USERNAME,
    source: 'integration',
    integrationId: integration.id,
    provider: 'gitlab',
    revocable: false,
  } as const;
  const project =
    rig.repository_id === null || !rig.gitlab_base_url
      ? ({ scope: 'account', reason: 'the rig has no GitLab project id: reconnect it to a project' } as const)
      : await deps.projectTokens.forRig(
          {
            rigId: rig.rig_id,
            rigName: rig.rig_name,
            integrationId: integration.id,
            projectId: rig.repository_id,
            baseUrl: rig.gitlab_base_url,
            access: rig.access,
          },
          minValiditySeconds,
          dispatchId,
        );
  if (project.scope === 'repository') {
    return { ...base, token: project.token, expiresAt: project.expiresAt, scope: 'repository', scopeReason: null };
  }
  // The grant is shared by every dispatch of the integration and reused while it has more than the
  // workflow's lead left, so N dispatches cause one refresh per expiry, not N (the refresher tells the others).
  const valid = await deps.gitlabGrants.getValidAccessToken(integration.id, minValiditySeconds, dispatchId);
  return { ...base, token: valid.accessToken, expiresAt: valid.expiresAt, scope: 'account', scopeReason: project.reason };
}

async function noteStatus(
  deps: ResolverDeps,
  dispatchId: string,
  integrationId: string,
  status: 'active' | 'suspended' | 'deleted',
  reason: string | null,
) {
  if (await setIntegrationStatus(deps.db, integrationId, status, reason))
    await deps.onIntegrationStatusChanged?.(integrationId, status, dispatchId);
}
