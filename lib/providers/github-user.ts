// A GitHub App's user authorization over plain fetch: the web flow's code exchange and refresh at
// <web>/login/oauth/access_token (GitHub answers their failures with 200 and an `error` field), and
// the person's own calls, GET /user and GET /user/installations, for sign-in and for checking that
// an installation is theirs.
import type { AppType, GithubOAuthClient } from '../config';
import { githubWebUrl } from './github-fns';
import { ProviderError, type GithubUser, type GithubUserClient, type GithubUserTokens } from './types';

export interface GithubUserClientOptions {
  apiUrl: string;
  clients: Partial<Record<AppType, GithubOAuthClient>>;
  timeoutMs?: number;
}

// 100 pages of 100: nobody sees ten thousand installations of one app.
const MAX_PAGES = 100;

/** The token endpoint's answer as the service keeps it. */
export function parseUserTokens(body: Record<string, unknown>, nowMs: number): GithubUserTokens {
  if (typeof body.access_token !== 'string')
    throw new ProviderError('provider_unavailable', 'GitHub answered the token request without a token');
  const inSeconds = (v: unknown) => (typeof v === 'number' && v > 0 ? new Date(nowMs + v * 1000) : null);
  return {
    accessToken: body.access_token,
    refreshToken: typeof body.refresh_token === 'string' ? body.refresh_token : null,
    expiresAt: inSeconds(body.expires_in),
    refreshTokenExpiresAt: inSeconds(body.refresh_token_expires_in),
  };
}

export function createGithubUserClient(opts: GithubUserClientOptions): GithubUserClient {
  const apiUrl = opts.apiUrl.replace(/\/+$/, '');
  const webUrl = githubWebUrl(apiUrl);
  const timeoutMs = opts.timeoutMs ?? 10_000;

  function client(appType: AppType): GithubOAuthClient {
    const c = opts.clients[appType];
    if (!c) {
      const vars = appType === 'lite' ? 'GITHUB_LITE_APP_CLIENT_ID / _SECRET' : 'GITHUB_APP_CLIENT_ID / _SECRET';
      throw new ProviderError('provider_unavailable', `the ${appType} GitHub App's OAuth client is not configured (set ${vars})`);
    }
    return c;
  }

  async function send(url: string, init: RequestInit, action: string): Promise<{ status: number; body: unknown; headers: Headers }> {
    let res: Response;
    let text: string;
    try {
      res = await fetch(url, { ...init, redirect: 'manual', signal: AbortSignal.timeout(timeoutMs) });
      // Read inside the try: a body cut off or too slow fails here, and is GitHub not answering too.
      text = await res.text();
    } catch (err) {
      const name = (err as { name?: string }).name;
      throw new ProviderError(
        'provider_unavailable',
        `GitHub did not answer ${action} (${name === 'TimeoutError' ? 'timed out' : 'network error'})`,
      );
    }
    let body: unknown;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      body = undefined;
    }
    if (res.status >= 500 || res.status === 429)
      throw new ProviderError('provider_unavailable', `GitHub failed ${action} (${res.status})`, res.status);
    return { status: res.status, body, headers: res.headers };
  }

  async function tokenGrant(appType: AppType, params: Record<string, string>, action: string): Promise<GithubUserTokens> {
    const { clientId, clientSecret } = client(appType);
    const { status, body } = await send(
      `${webUrl}/login/oauth/access_token`,
      {
        method: 'POST',
        headers: { accept: 'application/json', 'content-type': 'application/x-www-form-urlencoded', 'user-agent': 'repo-connect' },
        body: new URLSearchParams({ client_id: clientId, client_secret: clientSecret, ...params }),
      },
      action,
    );
    const answer = (body ?? {}) as Record<string, unknown>;
    const error = typeof answer.error === 'string' ? answer.error : status === 200 ? undefined : `http_${status}`;
    if (error === 'bad_verification_code' || error === 'bad_refresh_token') {
      throw new ProviderError(
        'reconnect_required',
        `GitHub refused ${action} (${error}): codes work once within 10 minutes, refresh tokens once`,
      );
    }
    if (error === 'incorrect_client_credentials') {
      throw new ProviderError(
        'provider_unavailable',
        `GitHub refused the app's OAuth client during ${action}: check GITHUB_APP_CLIENT_ID / _SECRET`,
      );
    }
    if (error) throw new ProviderError('provider_unavailable', `GitHub refused ${action} (${error.slice(0, 80)})`);
    return parseUserTokens(answer, Date.now());
  }

  async function apiGet(path: string, accessToken: string, action: string) {
    const answer = await send(
      `${apiUrl}${path}`,
      { headers: { authorization: `Bearer ${accessToken}`, accept: 'application/vnd.github+json', 'user-agent': 'repo-connect' } },
      action,
    );
    if (answer.status === 401) throw new ProviderError('invalid_credentials', `GitHub rejected the user token while ${action} (401)`, 401);
    if (answer.status !== 200)
      throw new ProviderError('provider_unavailable', `GitHub answered ${answer.status} while ${action}`, answer.status);
    return answer;
  }

  return {
    webUrl,
    isConfigured: (appType) => opts.clients[appType] !== undefined,

    authorizeUrl({ state, redirectUri }) {
      const query = new URLSearchParams({
        client_id: client('standard').clientId,
        redirect_uri: redirectUri,
        state,
        allow_signup: 'false',
      });
      return `${webUrl}/login/oauth/authorize?${query}`;
    },

    exchangeCode(appType, { code, redirectUri }) {
      return tokenGrant(appType, { code, ...(redirectUri ? { redirect_uri: redirectUri } : {}) }, 'exchanging a sign-in code');
    },

    refresh(appType, refreshToken) {
      return tokenGrant(appType, { grant_type: 'refresh_token', refresh_token: refreshToken }, 'refreshing a user token');
    },

    async getUser(accessToken): Promise<GithubUser> {
      const { body } = await apiGet('/user', accessToken, 'reading the signed-in user');
      const u = (body ?? {}) as { id?: unknown; login?: unknown; name?: unknown; avatar_url?: unknown };
      if (typeof u.id !== 'number' || typeof u.login !== 'string')
        throw new ProviderError('provider_unavailable', 'GitHub answered /user without an id and login');
      return {
        id: u.id,
        login: u.login,
        name: typeof u.name === 'string' ? u.name : null,
        avatarUrl: typeof u.avatar_url === 'string' ? u.avatar_url : null,
      };
    },

    async canSeeInstallation(accessToken, installationId) {
      for (let page = 1; page <= MAX_PAGES; page++) {
        const { body, headers } = await apiGet(
          `/user/installations?per_page=100&page=${page}`,
          accessToken,
          `listing the user's installations (page ${page})`,
        );
        const list = ((body ?? {}) as { installations?: Array<{ id?: unknown }> }).installations ?? [];
        if (list.some((i) => i.id === installationId)) return true;
        if (!/rel="next"/.test(headers.get('link') ?? '') || list.length === 0) return false;
      }
      return false;
    },
  };
}
