// Integrations: GitHub App installations and GitLab OAuth grants, their status and their cached
// repository lists. The connect flows (dashboard) and POST /api/integrations share these paths.
import { randomUUID } from 'node:crypto';
import type { z } from 'zod';
import { normaliseBaseUrl } from '../../lib/base-url';
import type { Core } from '../../lib/core';
import { isUniqueViolation } from '../../lib/db';
import { IntegrationUnavailableError } from '../../lib/gitlab-grant';
import { setIntegrationStatus } from '../../lib/integration-status';
import { ProviderError, type GitlabTokens, type PlatformRepository } from '../../lib/providers/types';
import { gitlabTokenContext } from '../../lib/secret-contexts';
import type { PlatformIntegration } from '../../prisma/generated/client';
import { AppError, badRequest, conflict, notFound, providerFailure, unprocessable } from '../errors';
import type { registerGithubBody, registerGitlabBody } from '../schemas/integrations';
import { ensureOwner } from './owners';
import { presentIntegration } from './presenters';

type Deps = Pick<Core, 'db' | 'secrets' | 'github' | 'gitlab' | 'gitlabGrants' | 'projectTokens' | 'notifier' | 'config'>;

/**
 * The canonical form of a GitLab base URL, which must be GITLAB_URL or in GITLAB_ALLOWED_URLS: a
 * grant's refreshes send the OAuth client secret there, so the caller does not get to choose.
 */
export function allowedGitlabBaseUrl(raw: string, allowed: readonly string[]): string {
  let url: string;
  try {
    url = normaliseBaseUrl(raw);
  } catch (err) {
    throw badRequest('base_url', `base_url: ${(err as Error).message}`);
  }
  if (!allowed.includes(url))
    throw badRequest('base_url', `base_url: must be GITLAB_URL or one of GITLAB_ALLOWED_URLS (${allowed.join(', ')})`);
  return url;
}

// 250 + 500 + 1000 ms between attempts: rides out a short GitLab blip within one request.
const GITLAB_USER_ATTEMPTS = 4;

export function createIntegrationService(deps: Deps) {
  const { db, secrets, github, gitlab } = deps;

  async function get(integrationId: string): Promise<PlatformIntegration> {
    const row = await db.platformIntegration.findUnique({ where: { id: integrationId } });
    if (!row) throw notFound('integration', 'integration_id');
    return row;
  }

  /** The integration registered for a GitHub App installation, if any. */
  async function findByInstallation(installationId: number): Promise<PlatformIntegration | null> {
    return db.platformIntegration.findUnique({ where: { githubInstallationId: BigInt(installationId) } });
  }

  /** Provider failures mark the integration so every screen shows the same status. */
  async function noteProviderFailure(row: PlatformIntegration, err: unknown): Promise<never> {
    const code = err instanceof ProviderError || err instanceof IntegrationUnavailableError ? err.code : undefined;
    const status =
      code === 'installation_suspended'
        ? 'suspended'
        : code === 'installation_not_found'
          ? 'deleted'
          : code === 'reconnect_required'
            ? 'reconnect_required'
            : null;
    if (status && (await setIntegrationStatus(db, row.id, status, (err as Error).message))) {
      await deps.notifier.integrationChanged(row.id, `integration became ${status}`);
    }
    if (err instanceof ProviderError) throw providerFailure(err);
    if (err instanceof IntegrationUnavailableError) throw new AppError(502, err.code, err.message);
    throw err;
  }

  /** Lists fetched before a sync writes regardless (the row kept changing under the earlier ones). */
  const SYNC_ATTEMPTS = 3;

  async function fetchRepositories(row: PlatformIntegration): Promise<PlatformRepository[]> {
    try {
      if (row.provider === 'github') {
        return await github.listInstallationRepositories(row.githubAppType ?? 'standard', Number(row.githubInstallationId));
      }
      return await listGitlabProjects(row);
    } catch (err) {
      return noteProviderFailure(row, await confirmedGone(row, err));
    }
  }

  /**
   * `deleted` is final, so one 404 while listing (the listing token's mint or a page) is not
   * enough: GitHub is asked for the installation itself, and only a second 404 stands; anything
   * else makes it a passing failure (as the token resolver does for a dispatch's mint).
   */
  async function confirmedGone(row: PlatformIntegration, err: unknown): Promise<unknown> {
    if (row.provider !== 'github' || !(err instanceof ProviderError) || err.code !== 'installation_not_found') return err;
    const gone = await github.getInstallation(row.githubAppType ?? 'standard', Number(row.githubInstallationId)).then(
      () => false,
      (e: unknown) => e instanceof ProviderError && e.code === 'installation_not_found',
    );
    return gone
      ? err
      : new ProviderError('provider_unavailable', 'GitHub answered 404 while listing an installation that exists; try again', err.status);
  }

  async function listGitlabProjects(row: PlatformIntegration): Promise<PlatformRepository[]> {
    const baseUrl = row.gitlabBaseUrl as string;
    const first = await deps.gitlabGrants.getValidAccessToken(row.id, 60);
    try {
      return await gitlab.listProjects({ baseUrl, accessToken: first.accessToken });
    } catch (err) {
      if (!(err instanceof ProviderError) || err.code !== 'invalid_credentials') throw err;
    }
    // GitLab rejected a token that had not expired (the user revoked the app, or it was rotated
    // elsewhere): ask for one newer than it. A dead grant then shows as reconnect_required from
    // the refresh, which also marks the integration.
    const remaining = Math.ceil((first.expiresAt.getTime() - Date.now()) / 1000);
    const newer = await deps.gitlabGrants.getValidAccessToken(row.id, Math.max(remaining, 0) + 1);
    try {
      return await gitlab.listProjects({ baseUrl, accessToken: newer.accessToken });
    } catch (err) {
      if (err instanceof ProviderError && err.code === 'invalid_credentials') {
        throw new ProviderError('reconnect_required', 'GitLab rejects even a freshly refreshed token: reconnect the account', err.status);
      }
      throw err;
    }
  }

  /**
   * GET /api/v4/user during registration. After we refreshed, the caller's refresh token is used up
   * and the new pair lives only in memory, so a GitLab blip is retried rather than losing the grant.
   */
  async function gitlabUser(baseUrl: string, accessToken: string, refreshed: boolean) {
    for (let attempt = 1; ; attempt++) {
      try {
        return await gitlab.getUser({ baseUrl, accessToken });
      } catch (err) {
        const transient = err instanceof ProviderError && err.code === 'provider_unavailable';
        if (!refreshed || !transient) throw err;
        if (attempt >= GITLAB_USER_ATTEMPTS) {
          throw new ProviderError(
            'reconnect_required',
            `${err.message}; the grant had just been refreshed, so the refresh token sent is used up: connect the account again`,
            err.status,
          );
        }
        await new Promise((resolve) => setTimeout(resolve, 250 * 2 ** (attempt - 1)));
      }
    }
  }

  /**
   * Fetches the list and stores it only over the list it started from: a webhook that removed a
   * repository while the list was fetched (pages, replication retries: seconds) is not undone by a
   * list made before it. Compared on the list itself, not the row's `updated_at`, which other writes
   * move too (the grant refresh the listing itself may make). The last attempt writes regardless.
   */
  async function fetchAndStore(row: PlatformIntegration): Promise<PlatformIntegration> {
    for (let attempt = 1; ; attempt++) {
      const [before] = await db.$queryRaw<Array<{ list: string }>>`
        SELECT "repositories"::text AS list FROM "platform_integrations" WHERE "id" = ${row.id}::uuid`;
      const data = { repositories: (await fetchRepositories(row)) as object[], repositoriesSyncedAt: new Date() };
      if (attempt === SYNC_ATTEMPTS || !before) return db.platformIntegration.update({ where: { id: row.id }, data });
      const written = await db.$executeRaw`
        UPDATE "platform_integrations"
        SET "repositories" = ${JSON.stringify(data.repositories)}::jsonb, "repositories_synced_at" = ${data.repositoriesSyncedAt},
            "updated_at" = CURRENT_TIMESTAMP
        WHERE "id" = ${row.id}::uuid AND "repositories"::text = ${before.list}`;
      if (written === 1) return db.platformIntegration.findUniqueOrThrow({ where: { id: row.id } });
    }
  }

  async function syncRepositories(row: PlatformIntegration) {
    if (row.status === 'deleted') throw new AppError(502, 'installation_not_found', 'the integration was deleted at the provider');
    const updated = await fetchAndStore(row);
    if (row.status !== 'active' && (await setIntegrationStatus(db, row.id, 'active', null))) {
      await deps.notifier.integrationChanged(row.id, 'integration became active');
    }
    return updated;
  }

  return {
    get,
    findByInstallation,
    syncRepositories,

    async list(ownerId: string) {
      const rows = await db.platformIntegration.findMany({ where: { ownerId }, orderBy: { createdAt: 'asc' } });
      return { integrations: rows.map(presentIntegration) };
    },

    /** Registers (or re-registers) a GitHub App installation after reading it with the app JWT. */
    async registerGithub(body: z.infer<typeof registerGithubBody> & { owner_id: string }) {
      if (!github.hasApp(body.app_type)) {
        throw unprocessable('app_not_configured', `the ${body.app_type} GitHub App is not configured on this service`, 'app_type');
      }
      let installation;
      try {
        installation = await github.getInstallation(body.app_type, body.installation_id);
      } catch (err) {
        if (err instanceof ProviderError) throw providerFailure(err, 'installation_id');
        throw err;
      }
      const status = installation.suspendedAt ? 'suspended' : 'active';
      const existing = await findByInstallation(body.installation_id);
      if (existing && existing.ownerId !== body.owner_id) {
        throw conflict('integration_exists', 'this installation is already registered to another owner', 'installation_id');
      }
      const data = {
        status,
        statusReason: installation.suspendedAt ? `suspended at ${installation.suspendedAt}` : null,
        accountLogin: installation.account.login,
        accountId: BigInt(installation.account.id),
        githubAppType: body.app_type,
      } as const;
      if (existing) {
        const row = await db.platformIntegration.update({
          where: { id: existing.id },
          data: { ...data, ...(existing.status !== status ? { statusChangedAt: new Date() } : {}) },
        });
        if (existing.status !== status) await deps.notifier.integrationChanged(row.id, `integration became ${status}`);
        return { created: false, integration: presentIntegration(row) };
      }
      await ensureOwner(db, body.owner_id);
      try {
        const row = await db.platformIntegration.create({
          data: { ...data, ownerId: body.owner_id, provider: 'github', githubInstallationId: BigInt(body.installation_id) },
        });
        return { created: true, integration: presentIntegration(row) };
      } catch (err) {
        if (isUniqueViolation(err))
          throw conflict('integration_exists', 'this installation was registered concurrently', 'installation_id');
        throw err;
      }
    },

    /**
     * Registers a GitLab grant: refreshes first when the access token is (nearly) expired, reads
     * the user it belongs to, and stores the pair encrypted. Connecting the same GitLab user again
     * replaces the grant: that is how `reconnect_required` is fixed.
     */
    async registerGitlab(body: Omit<z.infer<typeof registerGitlabBody>, 'expires_at'> & { expires_at: string | Date; owner_id: string }) {
      if (!gitlab.isConfigured()) throw unprocessable('app_not_configured', 'GitLab OAuth is not configured on this service', 'provider');
      const baseUrl = allowedGitlabBaseUrl(body.base_url ?? deps.config.gitlab.url, deps.config.gitlab.allowedUrls);
      let tokens: GitlabTokens = { accessToken: body.access_token, refreshToken: body.refresh_token, expiresAt: new Date(body.expires_at) };
      let user;
      try {
        const refresh = tokens.expiresAt.getTime() - Date.now() < deps.config.tokenRefreshMarginSeconds * 1000;
        if (refresh) tokens = await gitlab.refresh({ baseUrl, refreshToken: tokens.refreshToken });
        user = await gitlabUser(baseUrl, tokens.accessToken, refresh);
      } catch (err) {
        if (err instanceof ProviderError) throw providerFailure(err, err.code === 'reconnect_required' ? 'refresh_token' : 'access_token');
        throw err;
      }
      const where = { ownerId: body.owner_id, provider: 'gitlab' as const, gitlabBaseUrl: baseUrl, accountId: BigInt(user.id) };
      // Sealed for the row that keeps them (the row id is part of the encryption context).
      const grantFor = (id: string) => ({
        accountLogin: user.username,
        accessTokenEnc: secrets.encrypt(tokens.accessToken, gitlabTokenContext(id, 'access')),
        refreshTokenEnc: secrets.encrypt(tokens.refreshToken, gitlabTokenContext(id, 'refresh')),
        accessTokenExpiresAt: tokens.expiresAt,
        status: 'active' as const,
        statusReason: null,
      });
      const reconnect = async (id: string) => {
        const row = await db.platformIntegration.update({
          where: { id },
          data: { ...grantFor(id), tokenVersion: { increment: 1 }, statusChangedAt: new Date() },
        });
        // The new grant may have what the old one lacked (the api scope): refused rigs ask again.
        await deps.projectTokens.retryNow({ integrationId: id });
        await deps.notifier.integrationChanged(id, 'gitlab grant reconnected');
        return { created: false, integration: presentIntegration(row) };
      };
      const existing = await db.platformIntegration.findFirst({ where });
      if (existing) return reconnect(existing.id);
      await ensureOwner(db, body.owner_id);
      const id = randomUUID();
      try {
        const row = await db.platformIntegration.create({ data: { id, ...where, ...grantFor(id) } });
        return { created: true, integration: presentIntegration(row) };
      } catch (err) {
        // The same grant registered at the same moment (a client retrying): this one is a reconnect.
        const raced = isUniqueViolation(err) ? await db.platformIntegration.findFirst({ where }) : null;
        if (!raced) throw err;
        return reconnect(raced.id);
      }
    },

    /** Repositories from the cache, fetched from the provider when empty or asked to. */
    async repositories(integrationId: string, opts: { q?: string; refresh?: boolean }) {
      let row = await get(integrationId);
      if (opts.refresh || row.repositoriesSyncedAt === null) row = await syncRepositories(row);
      const all = (row.repositories as unknown as PlatformRepository[]) ?? [];
      const q = opts.q?.trim().toLowerCase();
      const repositories = q ? all.filter((r) => r.name.toLowerCase().includes(q) || r.full_name.toLowerCase().includes(q)) : all;
      return { repositories, synced_at: row.repositoriesSyncedAt?.toISOString() ?? null };
    },
  };
}

export type IntegrationService = ReturnType<typeof createIntegrationService>;
