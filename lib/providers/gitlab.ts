// GitLab OAuth client over plain fetch. The base URL is per call because each integration may point
// at gitlab.com or a self-managed instance (possibly under a path prefix).
import {
  activeProjects,
  buildAuthorizeUrl,
  classifyGitlabApiFailure,
  classifyGitlabTokenFailure,
  classifyProjectTokenFailure,
  gitlabUrl,
  nextPage,
  parseProjectAccessToken,
  parseTokenResponse,
  type GitlabFailure,
  type GitlabProjectJson,
} from './gitlab-fns';
import { normaliseBaseUrl } from '../base-url';
import { noRedirectFetch, redirectFailure, refusedRedirect } from './no-redirect';
import { ProviderError, type GitlabClient, type GitlabTokens } from './types';

export interface GitlabClientOptions {
  clientId?: string;
  clientSecret?: string;
  /** Per HTTP call; default 10 s. */
  timeoutMs?: number;
  /**
   * The only base URLs calls may go to (normalised; GITLAB_URL and GITLAB_ALLOWED_URLS): a grant
   * stored before an instance was removed from the list is refused, not refreshed there.
   */
  allowedBaseUrls?: readonly string[];
}

interface Answer {
  status: number;
  headers: Headers;
  body: unknown;
}

// A runaway X-Next-Page (or a misbehaving proxy) must not page forever: 1000 pages = 100k projects.
const MAX_PAGES = 1000;
// A project's access tokens: 100 pages of 100.
const MAX_TOKEN_PAGES = 100;

/** Builds the GitlabClient; the OAuth application is optional until a GitLab flow is used. */
export function createGitlabClient(opts: GitlabClientOptions): GitlabClient {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const configured = Boolean(opts.clientId && opts.clientSecret);
  const allowed = opts.allowedBaseUrls ? new Set(opts.allowedBaseUrls) : undefined;
  const fetchOnce = noRedirectFetch();

  function checkBase(baseUrl: string): void {
    let canonical: string | undefined;
    try {
      canonical = normaliseBaseUrl(baseUrl);
    } catch {
      canonical = undefined;
    }
    if (allowed && (!canonical || !allowed.has(canonical))) {
      throw new ProviderError(
        'reconnect_required',
        `the GitLab base URL ${canonical ?? '(unparseable)'} is neither GITLAB_URL nor in GITLAB_ALLOWED_URLS: connect the account on an allowed instance`,
      );
    }
  }

  // Resolves with any HTTP answer but a redirect; rejects only with a ProviderError.
  async function send(url: string, init: RequestInit, action: string): Promise<Answer> {
    try {
      const res = await fetchOnce(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
      const text = await res.text();
      let body: unknown = text;
      try {
        body = text ? JSON.parse(text) : undefined;
      } catch {
        // Not JSON (an HTML error page from a proxy): classification goes by status alone.
      }
      return { status: res.status, headers: res.headers, body };
    } catch (err) {
      const redirect = refusedRedirect(err);
      if (redirect) throw redirectFailure('GitLab', redirect, action, 'check GITLAB_URL / the integration base URL');
      // Duck-typed: fetch's DOMException may come from another realm (jest), where instanceof fails.
      const { name, cause } = (err ?? {}) as { name?: string; cause?: { message?: string } };
      const timedOut = name === 'TimeoutError' || name === 'AbortError';
      throw new ProviderError(
        'provider_unavailable',
        `GitLab did not answer ${action} (${timedOut ? `timed out after ${timeoutMs} ms` : cause?.message || 'network error'})`,
      );
    }
  }

  const failure = (a: Answer): GitlabFailure => {
    const headers: Record<string, string> = {};
    a.headers.forEach((value, name) => (headers[name] = value));
    return { status: a.status, headers, body: a.body };
  };

  async function tokenGrant(
    baseUrl: string,
    params: Record<string, string>,
    action: string,
    previousRefreshToken?: string,
  ): Promise<GitlabTokens> {
    if (!configured) {
      throw new ProviderError(
        'provider_unavailable',
        'the GitLab OAuth application is not configured (set GITLAB_CLIENT_ID and GITLAB_CLIENT_SECRET)',
      );
    }
    checkBase(baseUrl); // the client secret goes to allowed instances only
    const body = new URLSearchParams({ client_id: opts.clientId!, client_secret: opts.clientSecret!, ...params });
    const answer = await send(
      gitlabUrl(baseUrl, '/oauth/token'),
      { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' }, body },
      action,
    );
    if (answer.status !== 200) throw classifyGitlabTokenFailure(failure(answer), action);
    return parseTokenResponse((answer.body ?? {}) as object, Date.now(), previousRefreshToken);
  }

  async function apiGet(baseUrl: string, path: string, accessToken: string, action: string): Promise<Answer> {
    checkBase(baseUrl);
    const answer = await send(
      gitlabUrl(baseUrl, path),
      { headers: { authorization: `Bearer ${accessToken}`, accept: 'application/json' } },
      action,
    );
    if (answer.status !== 200) throw classifyGitlabApiFailure(failure(answer), action);
    return answer;
  }

  /** An /api/v4 call with a JSON body (or none); the caller classifies the answer. */
  function apiSend(baseUrl: string, path: string, accessToken: string, action: string, method: string, body?: object) {
    checkBase(baseUrl); // the grant's token goes to allowed instances only
    const headers: Record<string, string> = { authorization: `Bearer ${accessToken}`, accept: 'application/json' };
    if (body) headers['content-type'] = 'application/json';
    return send(gitlabUrl(baseUrl, path), { method, headers, body: body && JSON.stringify(body) }, action);
  }

  const tokensPath = (projectId: number, tail = '') => `/api/v4/projects/${encodeURIComponent(String(projectId))}/access_tokens${tail}`;

  return {
    isConfigured: () => configured,

    authorizeUrl({ baseUrl, state, codeChallenge, redirectUri, scope }) {
      if (!configured) {
        throw new ProviderError(
          'provider_unavailable',
          'the GitLab OAuth application is not configured (set GITLAB_CLIENT_ID and GITLAB_CLIENT_SECRET)',
        );
      }
      checkBase(baseUrl);
      return buildAuthorizeUrl({ baseUrl, clientId: opts.clientId!, redirectUri, state, codeChallenge, scope });
    },

    exchangeCode({ baseUrl, code, codeVerifier, redirectUri }) {
      return tokenGrant(
        baseUrl,
        { grant_type: 'authorization_code', code, code_verifier: codeVerifier, redirect_uri: redirectUri },
        'exchanging an authorization code',
      );
    },

    refresh({ baseUrl, refreshToken }) {
      // GitLab rotates the refresh token; if an instance ever answers without one, the old one still stands.
      return tokenGrant(baseUrl, { grant_type: 'refresh_token', refresh_token: refreshToken }, 'refreshing the GitLab token', refreshToken);
    },

    async getUser({ baseUrl, accessToken }) {
      const { body } = await apiGet(baseUrl, '/api/v4/user', accessToken, 'reading the GitLab user');
      const user = (body ?? {}) as { id?: unknown; username?: unknown; name?: unknown; avatar_url?: unknown };
      if (typeof user.id !== 'number' || typeof user.username !== 'string') {
        throw new ProviderError('provider_unavailable', 'GitLab answered /api/v4/user without an id and username');
      }
      return {
        id: user.id,
        username: user.username,
        ...(typeof user.name === 'string' ? { name: user.name } : {}),
        ...(typeof user.avatar_url === 'string' ? { avatarUrl: user.avatar_url } : {}),
      };
    },

    async listProjects({ baseUrl, accessToken }) {
      const projects: GitlabProjectJson[] = [];
      let page: number | undefined = 1;
      for (let i = 0; page !== undefined && i < MAX_PAGES; i++) {
        const path = `/api/v4/projects?membership=true&archived=false&per_page=100&page=${page}`;
        const answer = await apiGet(baseUrl, path, accessToken, `listing GitLab projects (page ${page})`);
        if (Array.isArray(answer.body)) projects.push(...(answer.body as GitlabProjectJson[]));
        page = nextPage(answer.headers.get('x-next-page'));
      }
      return activeProjects(projects);
    },

    async listProjectAccessTokens({ baseUrl, accessToken, projectId, search }) {
      const action = `listing the access tokens of GitLab project ${projectId}`;
      const rows: Array<{ id?: unknown; name?: unknown; active?: unknown }> = [];
      let page: number | undefined = 1;
      for (let i = 0; page !== undefined && i < MAX_TOKEN_PAGES; i++) {
        const query = new URLSearchParams({ state: 'active', search, per_page: '100', page: String(page) });
        const answer = await apiSend(baseUrl, tokensPath(projectId, `?${query}`), accessToken, action, 'GET');
        if (answer.status !== 200) throw classifyProjectTokenFailure(failure(answer), action);
        if (Array.isArray(answer.body)) rows.push(...(answer.body as typeof rows));
        page = nextPage(answer.headers.get('x-next-page'));
      }
      // Names are checked here too: some GitLab versions ignore `search` and answer every token of
      // the project, and the caller revokes what this returns.
      return rows
        .filter((r) => typeof r.id === 'number' && typeof r.name === 'string' && r.name.includes(search))
        .map((r) => ({ id: r.id as number, name: r.name as string, active: r.active !== false }));
    },

    async createProjectAccessToken({ baseUrl, accessToken, projectId, name, scopes, accessLevel, expiresAt }) {
      const action = `creating an access token for GitLab project ${projectId}`;
      const body = { name, scopes, access_level: accessLevel, expires_at: expiresAt };
      const answer = await apiSend(baseUrl, tokensPath(projectId), accessToken, action, 'POST', body);
      if (answer.status !== 201 && answer.status !== 200) throw classifyProjectTokenFailure(failure(answer), action);
      return parseProjectAccessToken(answer.body, action);
    },

    async rotateProjectAccessToken({ baseUrl, accessToken, projectId, tokenId, expiresAt }) {
      const action = `rotating access token ${tokenId} of GitLab project ${projectId}`;
      const answer = await apiSend(baseUrl, tokensPath(projectId, `/${tokenId}/rotate`), accessToken, action, 'POST', {
        expires_at: expiresAt,
      });
      if (answer.status !== 200) throw classifyProjectTokenFailure(failure(answer), action, true);
      return parseProjectAccessToken(answer.body, action);
    },

    async revokeProjectAccessToken({ baseUrl, accessToken, projectId, tokenId }) {
      const action = `revoking access token ${tokenId} of GitLab project ${projectId}`;
      const answer = await apiSend(baseUrl, tokensPath(projectId, `/${tokenId}`), accessToken, action, 'DELETE');
      if (answer.status === 204 || answer.status === 200) return 'revoked';
      if (answer.status === 404) return 'already_invalid';
      throw classifyProjectTokenFailure(failure(answer), action);
    },
  };
}
