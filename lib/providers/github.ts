// GitHub App client: @octokit/auth-app's request hook signs /app/* calls with the app JWT (from our
// cached signer), installation tokens are minted with an explicit POST every time, and every HTTP
// call carries its own timeout.
import { Octokit } from '@octokit/core';
import { paginateRest } from '@octokit/plugin-paginate-rest';
import { createAppAuth } from '@octokit/auth-app';
import type { AppType, GithubAppConfig } from '../config';
import {
  activeRepositories,
  classifyGithubFailure,
  createAppJwtSigner,
  githubInstallUrl,
  toGithubInstallation,
  toHttpFailure,
  type GithubEndpointKind,
} from './github-fns';
import { noRedirectFetch, redirectFailure, refusedRedirect } from './no-redirect';
import { githubTokenPermissions, ProviderError, type GithubClient, type MintedGithubToken } from './types';

export interface GithubClientOptions {
  apiUrl: string;
  apps: Partial<Record<AppType, GithubAppConfig>>;
  /** Per HTTP call; default 10 s. */
  timeoutMs?: number;
}

const PaginatingOctokit = Octokit.plugin(paginateRest);
type ProviderOctokit = InstanceType<typeof PaginatingOctokit>;

// A new token can be rejected for a few seconds while it replicates; auth-app waits ~5 s for the
// same reason. Doubling from 100 ms keeps the common case (a few hundred ms) fast.
const REPLICATION_FIRST_DELAY_MS = 100;
const REPLICATION_WINDOW_MS = 6_000;

// auth-app keeps installation tokens in an LRU for 59 minutes; a cache that never answers means no
// token outlives the call that minted it, in memory or otherwise.
const noCache = { get: async (): Promise<string> => '', set: async (): Promise<void> => undefined };

const quietLog = { debug: () => undefined, info: () => undefined, warn: console.warn, error: console.error };

/** Builds the GithubClient for an API base (github.com or GHES `<origin>/api/v3`) and up to two apps. */
export function createGithubClient(opts: GithubClientOptions): GithubClient {
  const apiUrl = opts.apiUrl.replace(/\/+$/, '');
  const timeoutMs = opts.timeoutMs ?? 10_000;
  // Octokit's paginator re-issues requests without per-call options, so the timeout lives in fetch;
  // so does the refusal of redirects (octokit would hand a 3xx back as a success).
  const fetchOnce = noRedirectFetch();
  const timedFetch: typeof fetch = (input, init) => {
    const timeout = AbortSignal.timeout(timeoutMs);
    return fetchOnce(input, { ...init, signal: init?.signal ? AbortSignal.any([init.signal, timeout]) : timeout });
  };
  const redirectHint = 'check GITHUB_API_URL';
  const base = { baseUrl: apiUrl, userAgent: 'repo-connect', log: quietLog, request: { fetch: timedFetch } };
  const tokenOctokit: ProviderOctokit = new PaginatingOctokit(base);
  const appOctokits = new Map<AppType, ProviderOctokit>();
  for (const [appType, app] of Object.entries(opts.apps) as [AppType, GithubAppConfig | undefined][]) {
    if (!app) continue;
    appOctokits.set(
      appType,
      new PaginatingOctokit({
        ...base,
        authStrategy: createAppAuth,
        auth: { appId: app.appId, createJwt: createAppJwtSigner(app.privateKey), cache: noCache },
      }),
    );
  }

  const appOctokit = (appType: AppType): ProviderOctokit => {
    const octokit = appOctokits.get(appType);
    if (!octokit) {
      const vars =
        appType === 'lite'
          ? 'GITHUB_LITE_APP_ID, GITHUB_LITE_APP_PRIVATE_KEY, GITHUB_LITE_APP_SLUG'
          : 'GITHUB_APP_ID, GITHUB_APP_PRIVATE_KEY, GITHUB_APP_SLUG';
      throw new ProviderError('provider_unavailable', `the ${appType} GitHub App is not configured (set ${vars})`);
    }
    return octokit;
  };

  async function call<T>(kind: GithubEndpointKind, action: string, appType: AppType | undefined, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof ProviderError) throw err;
      const redirect = refusedRedirect(err);
      if (redirect) throw redirectFailure('GitHub', redirect, action, redirectHint);
      throw classifyGithubFailure(toHttpFailure(err), { kind, action, appType });
    }
  }

  const tokenHeader = (token: string) => ({ authorization: `token ${token}` });

  // The client library answers a success whose body could not be read whole (a connection reset
  // mid-transfer) with an empty body, not an error: each answer is checked for what it must hold.
  const unreadable = (action: string) =>
    new ProviderError('provider_unavailable', `GitHub's answer was cut off or unreadable while ${action}; try again`);

  // Always an explicit POST: auth-app's installation auth would hand concurrent identical requests
  // the same in-flight token, and two dispatches must never share a token one of them may revoke.
  async function mint(
    appType: AppType,
    installationId: number,
    repositoryIds: number[] | undefined,
    permissions: Record<string, string>,
  ): Promise<MintedGithubToken> {
    const action = `minting a token for installation ${installationId}`;
    const { data } = await call('access_tokens', action, appType, () =>
      appOctokit(appType).request('POST /app/installations/{installation_id}/access_tokens', {
        installation_id: installationId,
        ...(repositoryIds ? { repository_ids: repositoryIds } : {}),
        permissions,
      }),
    );
    const expiresAt = new Date(data.expires_at);
    if (typeof data.token !== 'string' || data.token === '' || Number.isNaN(expiresAt.getTime())) throw unreadable(action);
    return { token: data.token, expiresAt, permissions: { ...(data.permissions as Record<string, string>) } };
  }

  async function withReplicationRetry<T>(action: string, fn: () => Promise<T>): Promise<T> {
    const deadline = Date.now() + REPLICATION_WINDOW_MS;
    for (let delay = REPLICATION_FIRST_DELAY_MS; ; delay *= 2) {
      try {
        return await call('installation_token', action, undefined, fn);
      } catch (err) {
        if (!(err instanceof ProviderError) || err.code !== 'invalid_credentials') throw err;
        const wait = Math.min(delay, deadline - Date.now());
        if (wait <= 0) {
          throw new ProviderError(
            'provider_unavailable',
            `GitHub kept rejecting a new installation token for ${REPLICATION_WINDOW_MS / 1000} s while ${action}`,
            401,
          );
        }
        await new Promise((resolve) => setTimeout(resolve, wait));
      }
    }
  }

  async function revoke(token: string): Promise<'revoked' | 'already_invalid'> {
    try {
      await tokenOctokit.request('DELETE /installation/token', { headers: tokenHeader(token) });
      return 'revoked';
    } catch (err) {
      const redirect = refusedRedirect(err);
      if (redirect) throw redirectFailure('GitHub', redirect, 'revoking an installation token', redirectHint);
      const failure = toHttpFailure(err);
      if (failure.status === 401) return 'already_invalid';
      throw classifyGithubFailure(failure, { kind: 'installation_token', action: 'revoking an installation token' });
    }
  }

  return {
    hasApp: (appType) => appOctokits.has(appType),

    async getInstallation(appType, installationId) {
      const { data } = await call('app', `reading installation ${installationId}`, appType, () =>
        appOctokit(appType).request('GET /app/installations/{installation_id}', { installation_id: installationId }),
      );
      if (typeof data !== 'object' || data === null || typeof data.id !== 'number')
        throw unreadable(`reading installation ${installationId}`);
      return toGithubInstallation(data);
    },

    async mintInstallationToken(appType, installationId, repositoryIds, access = 'write') {
      // An empty list would mean "every repository of the installation": never hand that out by accident.
      if (repositoryIds.length === 0) throw new Error('mintInstallationToken needs at least one repository id');
      return mint(appType, installationId, repositoryIds, githubTokenPermissions(appType, access));
    },

    async verifyInstallationToken(token) {
      await withReplicationRetry('verifying a new installation token', () =>
        tokenOctokit.request('GET /installation/repositories', { per_page: 1, headers: tokenHeader(token) }),
      );
    },

    async listInstallationRepositories(appType, installationId) {
      // metadata:read is all a listing needs, and the token dies right after.
      const { token } = await mint(appType, installationId, undefined, { metadata: 'read' });
      try {
        const action = `listing repositories of installation ${installationId}`;
        const repos = await withReplicationRetry(action, () =>
          new PaginatingOctokit({ ...base, auth: token }).paginate('GET /installation/repositories', { per_page: 100 }, (response) => {
            // GitHub's page is `{total_count, repositories}`; an empty body comes out as [] without the count.
            const count = (response.data as { total_count?: unknown }).total_count;
            if (response.data.length === 0 && typeof count !== 'number') throw unreadable(action);
            return response.data.map((r) => ({
              id: Number(r.id),
              name: r.name,
              full_name: r.full_name,
              private: r.private,
              default_branch: r.default_branch,
              clone_url: r.clone_url,
              archived: r.archived,
            }));
          }),
        );
        return activeRepositories(repos);
      } finally {
        // Best effort: a listing that succeeded should not fail on cleanup, and the token expires within the hour.
        await revoke(token).catch(() => undefined);
      }
    },

    revokeInstallationToken: revoke,

    installUrl(appType, state) {
      const app = opts.apps[appType];
      if (!app) throw new ProviderError('provider_unavailable', `the ${appType} GitHub App is not configured`);
      return githubInstallUrl(apiUrl, app.slug, state);
    },
  };
}
