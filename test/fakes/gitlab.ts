// A fake GitLab on a real HTTP port, optionally under a path prefix like a self-managed instance at
// https://host/gitlab: OAuth with PKCE and rotating refresh tokens (gitlab-oauth.ts), /api/v4/user,
// paginated /api/v4/projects with a role per member, project access tokens
// (gitlab-project-tokens.ts), git's access rule for a FakeGitServer, and failures on demand.
import { randomInt } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { FakeHttpService, statusText, type FakeRequest, type FakeResponse } from './fake-http';
import type { GitAccess } from './git-server';
import { GitlabOAuth, LEGACY_SCOPE } from './gitlab-oauth';
import { ProjectTokenApi, ROLE_LEVEL, type Role } from './gitlab-project-tokens';

export type { FailureSpec, RequestLogEntry } from './fake-http';
export type { Role } from './gitlab-project-tokens';

export interface ProjectSpec {
  name?: string;
  /** `project` (placed under `<username>-group/`) or a full `group/sub/project` path. */
  path: string;
  visibility?: 'private' | 'internal' | 'public';
  default_branch?: string;
  archived?: boolean;
  /** The user's role on it (default owner: it is in their namespace). */
  role?: Role;
}

interface FakeProject {
  id: number;
  name: string;
  path: string;
  path_with_namespace: string;
  visibility: string;
  default_branch: string;
  archived: boolean;
}

interface FakeUser {
  id: number;
  username: string;
  name: string;
  projects: FakeProject[];
}

const GIT_PATH = /^\/[^/]+\/[^/]+\.git\//;
const REPO_SCOPES: Record<GitAccess, string[]> = {
  read: ['api', 'read_repository', 'write_repository'],
  write: ['api', 'write_repository'],
};

const UNAUTHORIZED: FakeResponse = { status: 401, json: { message: '401 Unauthorized' } };

export class FakeGitLab extends FakeHttpService {
  readonly oauth = new GitlabOAuth();
  /** Project access tokens: plan, feature switch, server time zone, stats. */
  readonly projectTokens: ProjectTokenApi = new ProjectTokenApi({
    userOf: (t) => this.oauth.userOf(t),
    scopesOf: (t) => this.oauth.scopesOf(t),
    roleOf: (userId, projectId) => this.roles.get(projectId)?.get(userId),
    projectExists: (projectId) => this.roles.has(projectId),
    now: () => Date.now() + this.clockOffsetMs,
    newId: () => this.nextId++,
  });
  /** Serves git smart HTTP on `/<namespace>/<project>.git/…` (a FakeGitServer's handler). */
  gitHandler: ((req: IncomingMessage, res: ServerResponse) => void) | undefined;
  /** How far the fake's clock (for project token dates) runs ahead of the real one. */
  clockOffsetMs = 0;
  private readonly users = new Map<number, FakeUser>();
  /** project id → user id → role. */
  private readonly roles = new Map<number, Map<number, Role>>();
  private readonly byPath = new Map<string, number>();
  private authorizeUserId?: number;
  private pathPrefix = '';
  // Random starting ids: test files share one database, and ids from two fakes must not collide.
  private nextId = randomInt(1_000_000, 1_500_000_000);
  private readonly apiStats = { userCalls: 0, projectPages: 0 };

  /** Starts a fake on 127.0.0.1 and a random port; `pathPrefix` (e.g. '/gitlab') mimics a sub-path install. */
  static async start(opts: { pathPrefix?: string } = {}): Promise<FakeGitLab> {
    const fake = new FakeGitLab();
    fake.pathPrefix = (opts.pathPrefix ?? '').replace(/\/+$/, '');
    await fake.listen();
    return fake;
  }

  /** What the service calls GITLAB_URL / an integration's base_url. */
  get baseUrl(): string {
    return `http://127.0.0.1:${this.port}${this.pathPrefix}`;
  }
  get accessTokenLifetimeSeconds(): number {
    return this.oauth.accessTokenLifetimeSeconds;
  }
  set accessTokenLifetimeSeconds(value: number) {
    this.oauth.accessTokenLifetimeSeconds = value;
  }
  /** A snapshot: refreshes / invalidGrants / codeExchanges / revokes (OAuth), userCalls / projectPages (API). */
  get stats(): GitlabOAuth['stats'] & { userCalls: number; projectPages: number } {
    return { ...this.oauth.stats, ...this.apiStats };
  }

  registerApplication(app: { clientId: string; clientSecret: string; redirectUri: string }): void {
    this.oauth.apps.set(app.clientId, { ...app });
  }

  addUser(opts: { username: string; name?: string }): { id: number; username: string } {
    const user = { id: this.nextId++, username: opts.username, name: opts.name ?? opts.username, projects: [] };
    this.users.set(user.id, user);
    return { id: user.id, username: user.username };
  }

  /** Gives a user projects; a number generates `<username>-group/project-001`, … */
  addProjects(userId: number, projects: number | ProjectSpec[]): Array<FakeProject & { http_url_to_repo: string }> {
    const user = this.user(userId);
    const specs =
      typeof projects === 'number'
        ? Array.from({ length: projects }, (_, i) => ({ path: `project-${String(i + 1).padStart(3, '0')}` }))
        : projects;
    const added = specs.map((spec: ProjectSpec): FakeProject => {
      const full = spec.path.includes('/') ? spec.path : `${user.username}-group/${spec.path}`;
      const path = full.split('/').pop()!;
      const project = {
        id: this.nextId++,
        name: spec.name ?? path,
        path,
        path_with_namespace: full,
        visibility: spec.visibility ?? 'private',
        default_branch: spec.default_branch ?? 'main',
        archived: spec.archived ?? false,
      };
      this.roles.set(project.id, new Map([[userId, spec.role ?? 'owner']]));
      this.byPath.set(full, project.id);
      return project;
    });
    user.projects.push(...added);
    return added.map((p) => ({ ...p, http_url_to_repo: this.cloneUrl(p) }));
  }

  /** Sets a member's role on a project (adding the member, or removing it with null). */
  setRole(userId: number, projectId: number, role: Role | null): void {
    const members = this.roles.get(projectId);
    if (!members) throw new Error(`fake GitLab: no project ${projectId}`);
    const project = [...this.users.values()].flatMap((u) => u.projects).find((p) => p.id === projectId)!;
    const user = this.user(userId);
    if (role === null) {
      members.delete(userId);
      user.projects = user.projects.filter((p) => p.id !== projectId);
    } else {
      if (!members.has(userId)) user.projects.push(project);
      members.set(userId, role);
    }
  }

  /**
   * Issues a grant directly (what a completed OAuth flow would have produced). `scopes` default to
   * LEGACY_SCOPE (no `api`, so no project access tokens); pass GITLAB_SCOPES for a current grant.
   */
  grant(userId: number, clientId: string, opts: { scopes?: string } = {}): { accessToken: string; refreshToken: string; expiresAt: Date } {
    this.user(userId);
    if (!this.oauth.apps.has(clientId)) throw new Error(`fake GitLab: no application ${clientId}`);
    const { accessToken, refreshToken, expiresAt } = this.oauth.issue(userId, clientId, Date.now(), opts.scopes ?? LEGACY_SCOPE);
    return { accessToken, refreshToken, expiresAt };
  }

  /** The user revokes the application: every access and refresh token of theirs dies. */
  revokeGrant(userId: number): void {
    this.oauth.revokeUser(userId);
  }

  /** Which user the authorize page signs in as (default: the first user, created if none). */
  setAuthorizeUser(userId: number): void {
    this.user(userId);
    this.authorizeUserId = userId;
  }

  isAccessTokenLive(token: string): boolean {
    return this.oauth.userOf(token) !== undefined;
  }
  /** Whether `token` is a project access token GitLab would still accept. */
  isProjectTokenLive(token: string): boolean {
    return this.projectTokens.live(token) !== undefined;
  }

  /**
   * Git's rule over HTTPS: a project access token works on its own project alone; a user's OAuth
   * token on every project the user is a member of (Reporter reads, Developer writes). Both need
   * a repository scope (or `api`).
   */
  gitAccess(password: string, repoPath: string, access: GitAccess): boolean {
    const projectId = this.byPath.get(repoPath);
    if (projectId === undefined) return false;
    const projectToken = this.projectTokens.live(password);
    if (projectToken) {
      const level = access === 'write' ? ROLE_LEVEL.developer : ROLE_LEVEL.reporter;
      return projectToken.projectId === projectId && projectToken.accessLevel >= level && hasAny(projectToken.scopes, REPO_SCOPES[access]);
    }
    const userId = this.oauth.userOf(password);
    const role = userId === undefined ? undefined : this.roles.get(projectId)?.get(userId);
    if (role === undefined || !hasAny(this.oauth.scopesOf(password), REPO_SCOPES[access])) return false;
    return ROLE_LEVEL[role] >= (access === 'write' ? ROLE_LEVEL.developer : ROLE_LEVEL.reporter);
  }

  /** Every access and refresh token and project access token ever issued. */
  issuedTokens(): string[] {
    return [...this.oauth.issuedTokens(), ...this.projectTokens.issuedTokens()];
  }
  /** Every authorization code ever issued (they travel in redirect URLs, so they must not reach logs either). */
  issuedCodes(): string[] {
    return this.oauth.issuedCodes();
  }

  protected override takeover(req: IncomingMessage, res: ServerResponse): boolean {
    const path = this.relativePath(new URL(req.url ?? '/', 'http://127.0.0.1').pathname);
    if (!this.gitHandler || path === undefined || !GIT_PATH.test(path)) return false;
    this.gitHandler(req, res);
    return true;
  }

  protected relativePath(pathname: string): string | undefined {
    if (!this.pathPrefix) return pathname;
    return pathname.startsWith(`${this.pathPrefix}/`) ? pathname.slice(this.pathPrefix.length) : undefined;
  }

  protected injectable(_method: string, path: string): boolean {
    return path !== '/oauth/authorize';
  }

  protected failureBody(status: number): unknown {
    return { message: `${status} ${statusText(status)}` };
  }

  protected handle(req: FakeRequest): FakeResponse {
    const { method, path } = req;
    if (path === '/oauth/authorize' && method === 'GET') return this.oauth.authorizePage(req, `${this.pathPrefix}/oauth/authorize`);
    if (path === '/oauth/authorize' && method === 'POST') return this.oauth.authorizeSubmit(req, this.authorizingUser());
    if (path === '/oauth/token' && method === 'POST') return this.oauth.token(req);
    if (path === '/oauth/revoke' && method === 'POST') return this.oauth.revoke(req);
    if (path === '/api/v4/user' && method === 'GET') {
      this.apiStats.userCalls++;
      const user = this.authenticated(req, ['read_user', 'read_api', 'api']);
      if (!user || 'status' in user) return user ?? UNAUTHORIZED;
      return {
        status: 200,
        json: {
          id: user.id,
          username: user.username,
          name: user.name,
          state: 'active',
          avatar_url: `${this.baseUrl}/uploads/-/system/user/avatar/${user.id}/avatar.png`,
          web_url: `${this.baseUrl}/${user.username}`,
        },
      };
    }
    if (path === '/api/v4/projects' && method === 'GET') return this.listProjects(req);
    return this.projectTokens.handle(req) ?? { status: 404, json: { message: '404 Not Found' } };
  }

  private listProjects(req: FakeRequest): FakeResponse {
    this.apiStats.projectPages++;
    const user = this.authenticated(req, ['read_api', 'api']);
    if (!user || 'status' in user) return user ?? UNAUTHORIZED;
    const archived = req.query.get('archived');
    const projects = user.projects.filter((p) => archived === null || String(p.archived) === archived);
    const perPage = Math.min(100, Math.max(1, Number(req.query.get('per_page') ?? 20) || 20));
    const page = Math.max(1, Number(req.query.get('page') ?? 1) || 1);
    const totalPages = Math.max(1, Math.ceil(projects.length / perPage));
    const pageUrl = (p: number) => {
      const query = new URLSearchParams(req.query);
      query.set('page', String(p));
      query.set('per_page', String(perPage));
      return `${this.baseUrl}/api/v4/projects?${query}`;
    };
    const links = [
      ...(page > 1 ? [`<${pageUrl(page - 1)}>; rel="prev"`] : []),
      ...(page < totalPages ? [`<${pageUrl(page + 1)}>; rel="next"`] : []),
      `<${pageUrl(1)}>; rel="first"`,
      `<${pageUrl(totalPages)}>; rel="last"`,
    ];
    return {
      status: 200,
      headers: {
        'x-page': String(page),
        'x-per-page': String(perPage),
        'x-next-page': page < totalPages ? String(page + 1) : '',
        'x-prev-page': page > 1 ? String(page - 1) : '',
        'x-total': String(projects.length),
        'x-total-pages': String(totalPages),
        link: links.join(', '),
      },
      json: projects
        .slice((page - 1) * perPage, page * perPage)
        .map((p) => ({ ...p, http_url_to_repo: this.cloneUrl(p), web_url: `${this.baseUrl}/${p.path_with_namespace}` })),
    };
  }

  /** The token's user, undefined for no live token (401), or GitLab's 403 when none of `scopes` was granted. */
  private authenticated(req: FakeRequest, scopes: string[]): FakeUser | FakeResponse | undefined {
    const match = /^bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
    const grant = this.oauth.grantOf(match?.[1]);
    if (!grant) return undefined;
    if (!scopes.some((s) => grant.scopes.includes(s))) {
      return {
        status: 403,
        json: {
          error: 'insufficient_scope',
          error_description: 'The request requires higher privileges than provided by the access token.',
          scope: scopes.join(' '),
        },
      };
    }
    return this.users.get(grant.userId);
  }

  private authorizingUser(): number {
    if (this.authorizeUserId !== undefined) return this.authorizeUserId;
    const first = this.users.keys().next();
    return first.done ? this.addUser({ username: 'fake-user' }).id : first.value;
  }

  private user(userId: number): FakeUser {
    const user = this.users.get(userId);
    if (!user) throw new Error(`fake GitLab: no user ${userId}`);
    return user;
  }

  private cloneUrl(p: FakeProject): string {
    return `${this.baseUrl}/${p.path_with_namespace}.git`;
  }
}

const hasAny = (held: string[], wanted: string[]) => wanted.some((s) => held.includes(s));
