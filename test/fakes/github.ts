// A fake GitHub (Enterprise Server layout: API under /api/v3) on a real HTTP port: app JWTs checked
// for real, installation tokens scoped and expiring, paginated listings, the install page, and
// failures on demand. State and rules live in github-state.ts; this file routes and administers.
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AppType, GithubAppConfig } from '../../lib/config';
import { FakeHttpService, statusText, type FakeRequest, type FakeResponse } from './fake-http';
import { newAppKeyPair, verifyAppJwt } from './github-auth';
import { GithubOAuth } from './github-oauth';
import { githubPage, GithubState, type FakeRepo, type Level, type RepoSpec } from './github-state';
import {
  deliverWebhook,
  INSTALL_PATH,
  installationPayload,
  installationRepositoriesPayload,
  installedPageHtml,
  installPageHtml,
  setupRedirect,
} from './github-web';

export type { RepoSpec } from './github-state';
export type { FailureSpec, RequestLogEntry } from './fake-http';

export interface FakeGithubApp {
  appId: string;
  privateKeyPem: string;
  slug: string;
  /** The app's OAuth client (GITHUB_APP_CLIENT_ID / _SECRET). */
  clientId: string;
  clientSecret: string;
}

const API_PREFIX = '/api/v3';
const OAUTH_PATHS = new Set(['/login/oauth/authorize', '/login/oauth/access_token']);
// git smart HTTP on the clone URL (`<webUrl>/<owner>/<repo>.git`), as github.com serves it.
const GIT_PATH = /^\/[^/]+\/[^/]+\.git\/(?:info\/refs|git-upload-pack|git-receive-pack)$/;

export class FakeGitHub extends FakeHttpService {
  /** The rule engine behind the HTTP surface, for tests that need more than the helpers below. */
  readonly state = new GithubState();
  /** People, user authorization and user tokens (github-oauth.ts). */
  readonly oauth = new GithubOAuth(
    () => this.state.newId(),
    () => this.webUrl,
  );
  private readonly pendingRepos = new Map<string, RepoSpec[] | number>();
  /** Serves git on clone URLs when set (see git-server.ts); unset, those paths answer 404. */
  gitHandler: ((req: IncomingMessage, res: ServerResponse) => void) | undefined;

  /** Starts a fake on 127.0.0.1 and a random port. */
  static async start(opts: { tokenLifetimeSeconds?: number; newTokenUnauthorizedMs?: number } = {}): Promise<FakeGitHub> {
    const fake = new FakeGitHub();
    fake.state.tokenLifetimeSeconds = opts.tokenLifetimeSeconds ?? 3600;
    fake.state.newTokenUnauthorizedMs = opts.newTokenUnauthorizedMs ?? 0;
    await fake.listen();
    fake.state.webUrl = fake.webUrl;
    return fake;
  }

  /** GitHub's webhook delivery (see github-web.ts). */
  static deliverWebhook = deliverWebhook;

  get apiUrl(): string {
    return `${this.webUrl}${API_PREFIX}`;
  }
  get webUrl(): string {
    return `http://127.0.0.1:${this.port}`;
  }
  get tokenLifetimeSeconds(): number {
    return this.state.tokenLifetimeSeconds;
  }
  set tokenLifetimeSeconds(value: number) {
    this.state.tokenLifetimeSeconds = value;
  }
  /** For this long after a mint the new token gets 401 everywhere (GitHub's replication lag). */
  get newTokenUnauthorizedMs(): number {
    return this.state.newTokenUnauthorizedMs;
  }
  set newTokenUnauthorizedMs(value: number) {
    this.state.newTokenUnauthorizedMs = value;
  }
  get stats(): GithubState['stats'] {
    return this.state.stats;
  }
  /** Bodies of every POST …/access_tokens (repository_ids, permissions) and the status answered; no tokens. */
  get accessTokenRequests(): GithubState['accessTokenRequests'] {
    return this.state.accessTokenRequests;
  }

  /**
   * Registers an app with a fresh RSA key (the fake keeps only the public half) and its OAuth client;
   * `requestOAuthOnInstall` sends installs to the first callback URL with a code, as GitHub does.
   */
  async createApp(opts: {
    slug: string;
    setupUrl?: string;
    permissions?: Record<string, Level>;
    callbackUrls?: string[];
    requestOAuthOnInstall?: boolean;
  }): Promise<FakeGithubApp> {
    const { privateKeyPem, publicKey } = await newAppKeyPair();
    const appId = String(this.state.newId());
    const permissions = opts.permissions ?? { contents: 'write', metadata: 'read' };
    this.state.apps.set(appId, { appId, slug: opts.slug, publicKey, setupUrl: opts.setupUrl, permissions });
    const clientId = `Iv23li${appId}${randomBytes(4).toString('hex')}`;
    const clientSecret = randomBytes(20).toString('hex');
    this.oauth.clients.set(clientId, {
      appId,
      clientId,
      clientSecret,
      callbackUrls: opts.callbackUrls ?? [],
      requestOAuthOnInstall: opts.requestOAuthOnInstall ?? false,
    });
    return { appId, privateKeyPem, slug: opts.slug, clientId, clientSecret };
  }

  /** A person on this GitHub (see github-oauth.ts). */
  addUser(opts: { login: string; name?: string }) {
    return this.oauth.addUser(opts);
  }

  /** Who is signed in on the fake's web pages. */
  setWebUser(userId: number): void {
    this.oauth.setWebUser(userId);
  }

  /** Lets a person see an installation (an organization member, for GET /user/installations). */
  grantInstallationAccess(installationId: number, userId: number): void {
    this.state.installation(installationId).userIds.add(userId);
  }

  /** The service's config entry for an app of this fake. */
  appConfig(app: FakeGithubApp, appType: AppType = 'standard'): GithubAppConfig {
    return { appType, appId: app.appId, privateKey: app.privateKeyPem, slug: app.slug };
  }

  /** Installs an app on an account; a number of repositories generates repo-001, repo-002, … */
  addInstallation(opts: {
    appId: string;
    account: { login: string; id?: number; type?: string };
    repositories: number | RepoSpec[];
    repositorySelection?: 'all' | 'selected';
    /** People who can see it through GET /user/installations. */
    users?: number[];
  }): { installationId: number; repositories: Array<Record<string, unknown> & { id: number; name: string; full_name: string }> } {
    if (!this.state.apps.has(opts.appId)) throw new Error(`fake GitHub: no app ${opts.appId}`);
    const account = { login: opts.account.login, id: opts.account.id ?? this.state.newId(), type: opts.account.type ?? 'Organization' };
    const id = this.state.newId();
    const inst = {
      id,
      appId: opts.appId,
      account,
      repoIds: new Set<number>(),
      suspendedAt: null,
      selection: opts.repositorySelection ?? 'selected',
      userIds: new Set(opts.users ?? []),
    };
    this.state.installations.set(id, inst);
    const repos = expandSpecs(opts.repositories).map((spec) => this.addRepository(id, spec));
    return { installationId: id, repositories: repos };
  }

  suspend(installationId: number): void {
    this.state.installation(installationId).suspendedAt = new Date().toISOString();
  }
  unsuspend(installationId: number): void {
    this.state.installation(installationId).suspendedAt = null;
  }
  /** Uninstalls: the installation and its tokens are gone (404 / 401 afterwards). */
  remove(installationId: number): void {
    this.state.installations.delete(installationId);
  }

  /** Gives the installation access to a repository (created on the account if new). */
  addRepository(installationId: number, spec: RepoSpec): Record<string, unknown> & { id: number; name: string; full_name: string } {
    const inst = this.state.installation(installationId);
    const repo: FakeRepo = this.state.ensureRepo(inst.account, spec);
    inst.repoIds.add(repo.id);
    return this.state.repoJson(repo) as Record<string, unknown> & { id: number; name: string; full_name: string };
  }
  removeRepository(installationId: number, repoId: number): void {
    this.state.installation(installationId).repoIds.delete(repoId);
  }

  /** Repositories the next install through the web page gets (default 3). */
  setPendingInstallRepositories(slug: string, specs: RepoSpec[] | number): void {
    this.pendingRepos.set(slug, specs);
  }

  isTokenLive(token: string, repoFullName?: string, access?: Level): boolean {
    return this.state.isTokenLive(token, repoFullName, access);
  }
  /** Whether `token` was revoked (DELETE /installation/token), as opposed to merely expired. */
  isTokenRevoked(token: string): boolean {
    return this.state.isRevoked(token);
  }
  issuedTokens(): string[] {
    return [...this.state.issuedTokens(), ...this.oauth.issuedTokens()];
  }
  /** The installation tokens issued for `installationId`, oldest first. */
  tokensOf(installationId: number): string[] {
    return this.state.tokensOf(installationId);
  }

  /** An `installation` webhook payload (action e.g. created, deleted, suspend, unsuspend), with the installation's repositories. */
  installationWebhookPayload(installationId: number, action: string): Record<string, unknown> {
    const inst = this.state.installation(installationId);
    const repos = [...inst.repoIds].map((id) => this.state.repos.get(id)!);
    return installationPayload(inst, this.webhookApp(inst.appId), action, repos);
  }

  /** An `installation_repositories` payload for repositories (ids) added to or removed from the installation. */
  installationRepositoriesWebhookPayload(
    installationId: number,
    change: { added?: number[]; removed?: number[] },
  ): Record<string, unknown> {
    const inst = this.state.installation(installationId);
    const repos = (ids: number[] = []) => ids.map((id) => this.state.repos.get(id)!);
    return installationRepositoriesPayload(inst, this.webhookApp(inst.appId), {
      added: repos(change.added),
      removed: repos(change.removed),
    });
  }

  private webhookApp(appId: string): { slug: string; permissions: Record<string, string> } {
    const app = this.state.apps.get(appId);
    return { slug: app?.slug ?? '', permissions: app?.permissions ?? {} };
  }

  protected override takeover(req: IncomingMessage, res: ServerResponse): boolean {
    if (!this.gitHandler || !GIT_PATH.test(new URL(req.url ?? '/', 'http://127.0.0.1').pathname)) return false;
    this.gitHandler(req, res);
    return true;
  }

  protected relativePath(pathname: string): string | undefined {
    if (pathname.startsWith(`${API_PREFIX}/`)) return pathname.slice(API_PREFIX.length);
    return INSTALL_PATH.test(pathname) || OAUTH_PATHS.has(pathname) ? pathname : undefined;
  }

  protected injectable(_method: string, path: string): boolean {
    return !INSTALL_PATH.test(path) && path !== '/login/oauth/authorize';
  }

  protected failureBody(status: number): unknown {
    if (status === 429 || status === 403)
      return { message: 'You have exceeded a secondary rate limit. Please wait a few minutes before you try again.' };
    return { message: statusText(status) };
  }

  protected handle(req: FakeRequest): FakeResponse {
    const { method, path } = req;
    const install = INSTALL_PATH.exec(path);
    if (install) return this.installPage(req, decodeURIComponent(install[1]));
    if (path === '/login/oauth/authorize') return method === 'POST' ? this.oauth.authorizeSubmit(req) : this.oauth.authorizePage(req);
    if (path === '/login/oauth/access_token' && method === 'POST') return this.oauth.token(req);
    if (path === '/user' && method === 'GET') return this.oauth.user(req);
    if (path === '/user/installations' && method === 'GET')
      return this.oauth.userInstallations(req, this.state.installations.values(), this.apiUrl);
    const appRoute = /^\/app\/installations\/(\d+)(\/access_tokens)?$/.exec(path);
    if (appRoute || path === '/app') {
      const jwt = verifyAppJwt(req.headers.authorization, (id) => this.state.apps.get(id)?.publicKey);
      if (!jwt.ok) return { status: 401, json: { message: jwt.message, documentation_url: 'https://docs.github.com/rest' } };
      const app = this.state.apps.get(jwt.appId)!;
      if (path === '/app' && method === 'GET')
        return { status: 200, json: { id: Number(app.appId), slug: app.slug, name: app.slug, permissions: app.permissions } };
      if (appRoute && appRoute[2] && method === 'POST') return this.state.mint(app.appId, Number(appRoute[1]), req.body);
      if (appRoute && !appRoute[2] && method === 'GET') return this.getInstallation(app.appId, Number(appRoute[1]));
    }
    if (path === '/installation/repositories' && method === 'GET') return this.listRepositories(req);
    if (path === '/installation/token' && method === 'DELETE') {
      const auth = this.state.authenticate(req.headers.authorization);
      if ('status' in auth) return auth;
      this.state.revoke(auth.token);
      return { status: 204 };
    }
    return { status: 404, json: { message: 'Not Found', documentation_url: 'https://docs.github.com/rest' } };
  }

  private getInstallation(appId: string, installationId: number): FakeResponse {
    this.state.stats.installationReads++;
    const inst = this.state.installations.get(installationId);
    if (!inst || inst.appId !== appId) return { status: 404, json: { message: 'Not Found' } };
    const app = this.state.apps.get(appId)!;
    return {
      status: 200,
      json: {
        id: inst.id,
        account: inst.account,
        suspended_at: inst.suspendedAt,
        repository_selection: inst.selection,
        app_id: Number(appId),
        app_slug: app.slug,
        target_type: inst.account.type,
        permissions: app.permissions,
      },
    };
  }

  private listRepositories(req: FakeRequest): FakeResponse {
    if (req.query.get('per_page') === '1') this.state.stats.verifications++;
    else this.state.stats.repositoryPages++;
    const auth = this.state.authenticate(req.headers.authorization);
    if ('status' in auth) return auth;
    const repos = this.state.scopedRepos(auth.record, auth.inst);
    const page = githubPage(repos, req.query, `${this.apiUrl}/installation/repositories`);
    return {
      status: 200,
      headers: page.headers,
      json: {
        total_count: repos.length,
        repository_selection: auth.record.repoIds ? 'selected' : auth.inst.selection,
        repositories: page.items.map((r) => this.state.repoJson(r)),
      },
    };
  }

  private installPage(req: FakeRequest, slug: string): FakeResponse {
    const app = [...this.state.apps.values()].find((a) => a.slug === slug);
    if (!app) return { status: 404, html: '<h1>Not Found</h1>' };
    const installer = this.oauth.webUser();
    if (req.method === 'GET') return { status: 200, html: installPageHtml(slug, req.query.get('state') ?? '', req.path, installer.login) };
    const state = String(req.body.state ?? '');
    const login = String(req.body.account ?? '').trim() || 'fake-org';
    const { installationId } = this.addInstallation({
      appId: app.appId,
      account: { login },
      repositories: this.pendingRepos.get(slug) ?? 3,
      users: [installer.id],
    });
    // With "Request user authorization (OAuth) during installation" GitHub skips the setup URL and
    // sends the browser to the callback URL with a code for the installer.
    const client = this.oauth.clientOfApp(app.appId);
    if (client?.requestOAuthOnInstall && client.callbackUrls.length > 0) {
      const code = this.oauth.newCode(client.clientId, installer.id, null);
      return { status: 302, headers: { location: setupRedirect(client.callbackUrls[0], installationId, state, code) } };
    }
    if (!app.setupUrl) return { status: 200, html: installedPageHtml(slug, installationId) };
    return { status: 302, headers: { location: setupRedirect(app.setupUrl, installationId, state) } };
  }
}

function expandSpecs(repositories: number | RepoSpec[]): RepoSpec[] {
  if (typeof repositories !== 'number') return repositories;
  return Array.from({ length: repositories }, (_, i) => ({ name: `repo-${String(i + 1).padStart(3, '0')}` }));
}
