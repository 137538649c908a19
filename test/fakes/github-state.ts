// What the fake GitHub knows: apps, installations, repositories and issued tokens, with the rules
// GitHub applies to them. No HTTP here; github.ts routes requests onto these methods.
import { randomInt, type KeyObject } from 'node:crypto';
import type { FakeResponse } from './fake-http';
import { bearerToken, newInstallationToken } from './github-auth';
import { webhookRepository } from './github-web';

export type Level = 'read' | 'write';

export interface RepoSpec {
  name: string;
  private?: boolean;
  default_branch?: string;
  archived?: boolean;
}

export interface FakeRepo {
  id: number;
  name: string;
  full_name: string;
  private: boolean;
  default_branch: string;
  archived: boolean;
  owner: { login: string; id: number; type: string };
}

export interface FakeApp {
  appId: string;
  slug: string;
  publicKey: KeyObject;
  setupUrl?: string;
  permissions: Record<string, Level>;
}

export interface FakeInstallation {
  id: number;
  appId: string;
  account: { login: string; id: number; type: string };
  repoIds: Set<number>;
  suspendedAt: string | null;
  selection: 'all' | 'selected';
  /** People who can see the installation (GET /user/installations): its installer, the org's members given. */
  userIds: Set<number>;
}

interface TokenRecord {
  installationId: number;
  /** null: every repository of the installation, as it is at the time of use. */
  repoIds: Set<number> | null;
  permissions: Record<string, string>;
  expiresAtMs: number;
  unauthorizedUntilMs: number;
  revoked: boolean;
}

export interface AccessTokenRequest {
  installationId: number;
  /** The JSON body as posted (repository_ids, repositories, permissions): no secrets in it. */
  body: Record<string, unknown>;
  repositoryIds: number[] | null;
  permissions: Record<string, string> | null;
  status: number;
}

const RANK: Record<string, number> = { read: 1, write: 2, admin: 3 };
const NOT_FOUND = { message: 'Not Found', documentation_url: 'https://docs.github.com/rest' };
const SUSPENDED = { message: 'This installation has been suspended' };
const BAD_CREDENTIALS = { message: 'Bad credentials', documentation_url: 'https://docs.github.com/rest' };

/** One page of a GitHub list (`per_page` at most 100, default 30; `page` from 1) and the Link header to the others. */
export function githubPage<T>(items: T[], query: URLSearchParams, url: string): { items: T[]; headers: Record<string, string> } {
  const perPage = Math.min(100, Math.max(1, Number(query.get('per_page') ?? 30) || 30));
  const page = Math.max(1, Number(query.get('page') ?? 1) || 1);
  const last = Math.max(1, Math.ceil(items.length / perPage));
  const link = (p: number, rel: string) => `<${url}?per_page=${perPage}&page=${p}>; rel="${rel}"`;
  const links = [
    ...(page > 1 ? [link(page - 1, 'prev'), link(1, 'first')] : []),
    ...(page < last ? [link(page + 1, 'next'), link(last, 'last')] : []),
  ];
  return { items: items.slice((page - 1) * perPage, page * perPage), headers: links.length ? { link: links.join(', ') } : {} };
}

/** GitHub timestamps have no milliseconds. */
export const isoSeconds = (ms: number): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

export class GithubState {
  readonly apps = new Map<string, FakeApp>();
  readonly installations = new Map<number, FakeInstallation>();
  readonly repos = new Map<number, FakeRepo>();
  readonly accessTokenRequests: AccessTokenRequest[] = [];
  /** Set by the server once it listens: clone and html URLs point at it. */
  webUrl = '';
  tokenLifetimeSeconds = 3600;
  newTokenUnauthorizedMs = 0;
  readonly stats = {
    mints: 0,
    verifications: 0,
    repositoryPages: 0,
    installationReads: 0,
    revokes: 0,
    mintsFor: (installationId: number): number => this.mintCounts.get(installationId) ?? 0,
  };
  private readonly tokens = new Map<string, TokenRecord>();
  private readonly mintCounts = new Map<number, number>();
  private readonly repoByFullName = new Map<string, FakeRepo>();
  // Random starting ids: test files share one database, and ids from two fakes must not collide.
  private nextId = randomInt(1_000_000, 1_500_000_000);

  newId(): number {
    return this.nextId++;
  }

  /** Finds or creates the account's repository (two apps on one account see the same repository ids). */
  ensureRepo(owner: FakeInstallation['account'], spec: RepoSpec): FakeRepo {
    const fullName = `${owner.login}/${spec.name}`;
    let repo = this.repoByFullName.get(fullName);
    if (!repo) {
      repo = {
        id: this.newId(),
        name: spec.name,
        full_name: fullName,
        private: spec.private ?? true,
        default_branch: spec.default_branch ?? 'main',
        archived: false,
        owner,
      };
      this.repos.set(repo.id, repo);
      this.repoByFullName.set(fullName, repo);
    }
    if (spec.default_branch) repo.default_branch = spec.default_branch;
    if (spec.private !== undefined) repo.private = spec.private;
    if (spec.archived !== undefined) repo.archived = spec.archived;
    return repo;
  }

  installation(id: number): FakeInstallation {
    const inst = this.installations.get(id);
    if (!inst) throw new Error(`fake GitHub: no installation ${id}`);
    return inst;
  }

  /** POST /app/installations/:id/access_tokens for an app whose JWT already checked out. */
  mint(appId: string, installationId: number, body: Record<string, unknown>, nowMs = Date.now()): FakeResponse {
    const requestedIds = Array.isArray(body.repository_ids) ? body.repository_ids.map(Number) : null;
    const requestedPerms = isRecord(body.permissions) ? (body.permissions as Record<string, string>) : null;
    const respond = (status: number, json: unknown): FakeResponse => {
      this.accessTokenRequests.push({
        installationId,
        body: structuredClone(body),
        repositoryIds: requestedIds,
        permissions: requestedPerms,
        status,
      });
      return { status, json };
    };
    const inst = this.installations.get(installationId);
    const app = this.apps.get(appId);
    if (!inst || !app || inst.appId !== appId) return respond(404, NOT_FOUND);
    if (inst.suspendedAt) return respond(403, SUSPENDED);
    let repoIds: Set<number> | null = null;
    if (requestedIds || Array.isArray(body.repositories)) {
      const byName = Array.isArray(body.repositories)
        ? body.repositories.map((n) => this.repoByFullName.get(`${inst.account.login}/${String(n)}`)?.id ?? -1)
        : [];
      repoIds = new Set([...(requestedIds ?? []), ...byName]);
      if ([...repoIds].some((id) => !inst.repoIds.has(id))) {
        return respond(422, {
          message: 'There is at least one repository that does not exist or is not accessible to the parent installation.',
          documentation_url: 'https://docs.github.com/rest/apps/apps#create-an-installation-access-token-for-an-app',
        });
      }
    }
    const permissions = requestedPerms ?? app.permissions;
    for (const [name, level] of Object.entries(permissions)) {
      if ((RANK[app.permissions[name]] ?? 0) < (RANK[level] ?? 99)) {
        return respond(422, {
          message: 'The permissions requested are not granted to this installation.',
          documentation_url: 'https://docs.github.com/rest/apps/apps#create-an-installation-access-token-for-an-app',
        });
      }
    }
    const token = newInstallationToken();
    const expiresAtMs = nowMs + this.tokenLifetimeSeconds * 1000;
    this.tokens.set(token, {
      installationId,
      repoIds,
      permissions: { ...permissions },
      expiresAtMs,
      unauthorizedUntilMs: nowMs + this.newTokenUnauthorizedMs,
      revoked: false,
    });
    this.stats.mints++;
    this.mintCounts.set(installationId, (this.mintCounts.get(installationId) ?? 0) + 1);
    const repositories = repoIds ? [...repoIds].map((id) => this.repos.get(id)) : undefined;
    return respond(201, {
      token,
      expires_at: isoSeconds(expiresAtMs),
      permissions,
      repository_selection: repoIds ? 'selected' : inst.selection,
      ...(repositories ? { repositories: repositories.map((r) => r && this.repoJson(r)) } : {}),
    });
  }

  /** Resolves an installation token from the Authorization header, or the failure GitHub would send. */
  authenticate(
    authorization: string | undefined,
    nowMs = Date.now(),
  ): { token: string; record: TokenRecord; inst: FakeInstallation } | FakeResponse {
    const token = bearerToken(authorization);
    const record = token ? this.tokens.get(token) : undefined;
    const inst = record && this.installations.get(record.installationId);
    if (!token || !record || !inst || record.revoked || nowMs >= record.expiresAtMs || nowMs < record.unauthorizedUntilMs) {
      return { status: 401, json: BAD_CREDENTIALS };
    }
    if (inst.suspendedAt) return { status: 403, json: SUSPENDED };
    return { token, record, inst };
  }

  /** The repositories a token can see right now. */
  scopedRepos(record: TokenRecord, inst: FakeInstallation): FakeRepo[] {
    const ids = [...inst.repoIds].filter((id) => !record.repoIds || record.repoIds.has(id));
    return ids.map((id) => this.repos.get(id)!).sort((a, b) => a.id - b.id);
  }

  /** Kills a token (DELETE /installation/token). */
  revoke(token: string): void {
    const record = this.tokens.get(token);
    if (record) record.revoked = true;
    this.stats.revokes++;
  }

  isRevoked(token: string): boolean {
    return this.tokens.get(token)?.revoked === true;
  }

  /** Live = issued, unexpired, unrevoked, installation present and active, repo in scope, permission enough. */
  isTokenLive(token: string, repoFullName?: string, access?: Level, nowMs = Date.now()): boolean {
    const record = this.tokens.get(token);
    const inst = record && this.installations.get(record.installationId);
    if (!record || !inst || record.revoked || nowMs >= record.expiresAtMs || inst.suspendedAt) return false;
    if (repoFullName !== undefined) {
      const repo = this.repoByFullName.get(repoFullName);
      if (!repo || !inst.repoIds.has(repo.id) || (record.repoIds && !record.repoIds.has(repo.id))) return false;
    }
    if (access !== undefined) {
      const granted = RANK[record.permissions.contents] ?? 0;
      if (granted < RANK[access]) return false;
    }
    return true;
  }

  /** Every token ever issued, for "no token leaked anywhere" scans. */
  issuedTokens(): string[] {
    return [...this.tokens.keys()];
  }

  /** The tokens issued for one installation, oldest first. */
  tokensOf(installationId: number): string[] {
    return [...this.tokens].filter(([, r]) => r.installationId === installationId).map(([t]) => t);
  }

  /** Repository JSON as GitHub's REST API shows it. */
  repoJson(repo: FakeRepo): Record<string, unknown> {
    const webUrl = this.webUrl;
    return {
      ...webhookRepository(repo),
      visibility: repo.private ? 'private' : 'public',
      owner: repo.owner,
      html_url: `${webUrl}/${repo.full_name}`,
      clone_url: `${webUrl}/${repo.full_name}.git`,
      default_branch: repo.default_branch,
      archived: repo.archived,
    };
  }
}

function isRecord(value: unknown): boolean {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
