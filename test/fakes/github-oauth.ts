// The fake GitHub's user side: people, the web flow of a GitHub App's user authorization
// (/login/oauth/authorize with an Authorize button as the signed-in person, single-use codes,
// /login/oauth/access_token), expiring ghu_ user tokens with rotating ghr_ refresh tokens, GET /user
// and GET /user/installations. GitHub answers token-endpoint errors with 200 and an `error` field.
import { randomBytes } from 'node:crypto';
import { escapeHtml, type FakeRequest, type FakeResponse } from './fake-http';
import { bearerToken } from './github-auth';
import { githubPage, type FakeInstallation } from './github-state';

export interface FakeUser {
  id: number;
  login: string;
  name: string | null;
  avatar_url: string;
}

/** A GitHub App's OAuth side, as its settings page has it. */
export interface FakeAppClient {
  appId: string;
  clientId: string;
  clientSecret: string;
  callbackUrls: string[];
  /** "Request user authorization (OAuth) during installation": installs come back to the callback URL with a code. */
  requestOAuthOnInstall: boolean;
}

interface CodeRecord {
  clientId: string;
  userId: number;
  redirectUri: string | null;
  expiresAtMs: number;
}

interface UserTokenRecord {
  clientId: string;
  userId: number;
  expiresAtMs: number;
}

const CODE_TTL_MS = 10 * 60_000;
const DOCS = 'https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors';
const tokenError = (error: string, description: string): FakeResponse => ({
  status: 200,
  json: { error, error_description: description, error_uri: `${DOCS}/#${error.replace(/_/g, '-')}` },
});
const page = (title: string, body: string) =>
  `<!doctype html><html><head><title>${escapeHtml(title)}</title></head><body>${body}</body></html>`;

export class GithubOAuth {
  readonly users = new Map<number, FakeUser>();
  readonly clients = new Map<string, FakeAppClient>();
  /** 8 hours and about 6 months, as GitHub issues them when "expire user authorization tokens" is on. */
  userTokenLifetimeSeconds = 8 * 3600;
  refreshTokenLifetimeSeconds = 15_811_200;
  readonly stats = { codeExchanges: 0, refreshes: 0, userCalls: 0, installationPages: 0, tokenErrors: 0 };
  private readonly codes = new Map<string, CodeRecord>();
  private readonly tokens = new Map<string, UserTokenRecord>();
  private readonly refreshTokens = new Map<string, UserTokenRecord>();
  private readonly everIssued: string[] = [];
  private webUserId?: number;

  constructor(
    private readonly newId: () => number,
    private readonly webUrl: () => string,
  ) {}

  addUser(opts: { login: string; name?: string }): FakeUser {
    const id = this.newId();
    const user = { id, login: opts.login, name: opts.name ?? null, avatar_url: `${this.webUrl()}/avatars/u/${id}?v=4` };
    this.users.set(id, user);
    return user;
  }

  /** Who is signed in on the fake's web pages (authorize, install); default the first person, created if none. */
  setWebUser(userId: number): void {
    if (!this.users.has(userId)) throw new Error(`fake GitHub: no user ${userId}`);
    this.webUserId = userId;
  }

  webUser(): FakeUser {
    if (this.webUserId !== undefined) return this.users.get(this.webUserId)!;
    const first = this.users.values().next();
    return first.done ? this.addUser({ login: 'fake-user' }) : first.value;
  }

  clientOfApp(appId: string): FakeAppClient | undefined {
    return [...this.clients.values()].find((c) => c.appId === appId);
  }

  /** A single-use code for `userId` through the app's client (what the browser carries back). */
  newCode(clientId: string, userId: number, redirectUri: string | null, nowMs = Date.now()): string {
    const code = randomBytes(10).toString('hex');
    this.codes.set(code, { clientId, userId, redirectUri, expiresAtMs: nowMs + CODE_TTL_MS });
    return code;
  }

  issuedTokens(): string[] {
    return [...this.everIssued];
  }

  /** The person revokes the app's authorization (their settings → Applications): every user token and refresh token of that client dies. */
  revokeAuthorization(userId: number, clientId: string): void {
    for (const map of [this.tokens, this.refreshTokens]) {
      for (const [token, record] of map) if (record.userId === userId && record.clientId === clientId) map.delete(token);
    }
  }

  /** GET /login/oauth/authorize: the consent page, after GitHub's checks of client and redirect URI. */
  authorizePage(req: FakeRequest): FakeResponse {
    const params = Object.fromEntries(req.query);
    const problem = this.authorizeProblem(params);
    if (problem) return { status: 400, html: page('Error', `<h1>${escapeHtml(problem)}</h1>`) };
    const client = this.clients.get(params.client_id)!;
    const hidden = Object.entries(params)
      .map(([k, v]) => `<input type="hidden" name="${escapeHtml(k)}" value="${escapeHtml(v)}">`)
      .join('');
    const body = `<h1>Authorize app ${escapeHtml(client.clientId)}</h1><p>Signed in as ${escapeHtml(this.webUser().login)}</p>
<form method="post" action="/login/oauth/authorize">${hidden}<button type="submit" name="authorize" value="1">Authorize</button></form>`;
    return { status: 200, html: page('Authorize application', body) };
  }

  /** POST /login/oauth/authorize: the person authorized; back to the redirect URI with a code and the state. */
  authorizeSubmit(req: FakeRequest): FakeResponse {
    const params = Object.fromEntries(Object.entries(req.body).map(([k, v]) => [k, String(v)]));
    const problem = this.authorizeProblem(params);
    if (problem) return { status: 400, html: page('Error', `<h1>${escapeHtml(problem)}</h1>`) };
    const client = this.clients.get(params.client_id)!;
    const target = new URL(params.redirect_uri ?? client.callbackUrls[0]);
    target.searchParams.set('code', this.newCode(client.clientId, this.webUser().id, params.redirect_uri ?? null));
    if (params.state) target.searchParams.set('state', params.state);
    return { status: 302, headers: { location: target.toString() } };
  }

  /** POST /login/oauth/access_token: authorization_code (the default) and refresh_token grants. */
  token(req: FakeRequest, nowMs = Date.now()): FakeResponse {
    const body = Object.fromEntries(Object.entries(req.body).map(([k, v]) => [k, String(v)]));
    const client = this.clients.get(body.client_id ?? '');
    const fail = (error: string, description: string) => {
      this.stats.tokenErrors++;
      return tokenError(error, description);
    };
    if (!client || client.clientSecret !== body.client_secret) {
      return fail('incorrect_client_credentials', 'The client_id and/or client_secret passed are incorrect.');
    }
    let userId: number;
    if ((body.grant_type ?? 'authorization_code') === 'authorization_code') {
      const code = this.codes.get(body.code ?? '');
      if (!code || code.clientId !== client.clientId || nowMs >= code.expiresAtMs) {
        return fail('bad_verification_code', 'The code passed is incorrect or expired.');
      }
      if (body.redirect_uri !== undefined && code.redirectUri !== null && body.redirect_uri !== code.redirectUri) {
        return fail('redirect_uri_mismatch', 'The redirect_uri MUST match the registered callback URL for this application.');
      }
      this.codes.delete(body.code);
      this.stats.codeExchanges++;
      userId = code.userId;
    } else if (body.grant_type === 'refresh_token') {
      const record = this.refreshTokens.get(body.refresh_token ?? '');
      if (!record || record.clientId !== client.clientId || nowMs >= record.expiresAtMs) {
        return fail('bad_refresh_token', 'The refresh token passed is incorrect or expired.');
      }
      // Rotation: a refresh token works once.
      this.refreshTokens.delete(body.refresh_token);
      this.stats.refreshes++;
      userId = record.userId;
    } else {
      return fail('unsupported_grant_type', 'The grant type is not supported.');
    }
    const accessToken = `ghu_${randomBytes(27).toString('base64url')}`;
    const refreshToken = `ghr_${randomBytes(57).toString('base64url')}`;
    this.tokens.set(accessToken, { clientId: client.clientId, userId, expiresAtMs: nowMs + this.userTokenLifetimeSeconds * 1000 });
    this.refreshTokens.set(refreshToken, {
      clientId: client.clientId,
      userId,
      expiresAtMs: nowMs + this.refreshTokenLifetimeSeconds * 1000,
    });
    this.everIssued.push(accessToken, refreshToken);
    return {
      status: 200,
      json: {
        access_token: accessToken,
        expires_in: this.userTokenLifetimeSeconds,
        refresh_token: refreshToken,
        refresh_token_expires_in: this.refreshTokenLifetimeSeconds,
        scope: '',
        token_type: 'bearer',
      },
    };
  }

  /** The person and app client behind a user token, or the 401 GitHub sends. */
  authenticate(authorization: string | undefined, nowMs = Date.now()): { user: FakeUser; client: FakeAppClient } | FakeResponse {
    const record = this.tokens.get(bearerToken(authorization) ?? '');
    if (!record || nowMs >= record.expiresAtMs) {
      return { status: 401, json: { message: 'Bad credentials', documentation_url: 'https://docs.github.com/rest' } };
    }
    return { user: this.users.get(record.userId)!, client: this.clients.get(record.clientId)! };
  }

  /** GET /user. */
  user(req: FakeRequest): FakeResponse {
    this.stats.userCalls++;
    const auth = this.authenticate(req.headers.authorization);
    if ('status' in auth) return auth;
    const { user } = auth;
    return { status: 200, json: { login: user.login, id: user.id, name: user.name, avatar_url: user.avatar_url, type: 'User' } };
  }

  /** GET /user/installations: the installations of the token's app that the person can access, paginated. */
  userInstallations(req: FakeRequest, installations: Iterable<FakeInstallation & { userIds: Set<number> }>, apiUrl: string): FakeResponse {
    this.stats.installationPages++;
    const auth = this.authenticate(req.headers.authorization);
    if ('status' in auth) return auth;
    const visible = [...installations]
      .filter((i) => i.appId === auth.client.appId && i.userIds.has(auth.user.id))
      .sort((a, b) => a.id - b.id);
    const page = githubPage(visible, req.query, `${apiUrl}/user/installations`);
    return {
      status: 200,
      headers: page.headers,
      json: {
        total_count: visible.length,
        installations: page.items.map((i) => ({
          id: i.id,
          account: i.account,
          app_id: Number(i.appId),
          target_type: i.account.type,
          repository_selection: i.selection,
          suspended_at: i.suspendedAt,
        })),
      },
    };
  }

  private authorizeProblem(params: Record<string, string>): string | undefined {
    const client = this.clients.get(params.client_id ?? '');
    if (!client) return 'The client_id is not valid.';
    if (params.redirect_uri !== undefined && !client.callbackUrls.includes(params.redirect_uri)) {
      return 'The redirect_uri MUST match the registered callback URL for this application.';
    }
    return undefined;
  }
}
