// Pure pieces of the GitLab client: URLs, token-response parsing, failure classification and
// project mapping. GitLab may live under a path prefix (https://host/gitlab), so URLs are joined,
// never resolved with `new URL(path, base)` (which would drop the prefix).
import { redactSecrets, retryAfterSeconds, type HttpFailure } from './github-fns';
import { ProjectTokenRefused, ProviderError, type GitlabTokens, type PlatformRepository, type ProjectAccessToken } from './types';

/**
 * The least the service needs: `api` is the narrowest GitLab scope that can create, rotate and
 * revoke project access tokens (the per-rig tokens containers get; it also lists projects),
 * `write_repository` lets git use the grant itself where GitLab refuses project tokens,
 * `read_user` names the connected account. The service calls nothing else with it (README, GitLab).
 */
export const GITLAB_SCOPES = 'api read_user write_repository';

// GitLab's default OAuth access-token lifetime; used when an instance omits expires_in.
const DEFAULT_LIFETIME_SECONDS = 7200;

/** `<base><path>` with exactly one slash between them, keeping any path prefix of the base. */
export function gitlabUrl(baseUrl: string, path: string): string {
  return `${baseUrl.replace(/\/+$/, '')}/${path.replace(/^\/+/, '')}`;
}

/** `<base>/oauth/authorize` for the authorization-code flow with PKCE S256. */
export function buildAuthorizeUrl(args: {
  baseUrl: string;
  clientId: string;
  redirectUri: string;
  state: string;
  codeChallenge: string;
  /** Default: what an integration needs; sign-in asks for read_user alone. */
  scope?: string;
}): string {
  const query = new URLSearchParams({
    client_id: args.clientId,
    redirect_uri: args.redirectUri,
    response_type: 'code',
    state: args.state,
    scope: args.scope ?? GITLAB_SCOPES,
    code_challenge: args.codeChallenge,
    code_challenge_method: 'S256',
  });
  return `${gitlabUrl(args.baseUrl, '/oauth/authorize')}?${query.toString().replace(/\+/g, '%20')}`;
}

/** GitLab's token response fields. */
export interface GitlabTokenJson {
  access_token?: unknown;
  refresh_token?: unknown;
  expires_in?: unknown;
  created_at?: unknown;
}

/** Token response → GitlabTokens; expiry from created_at + expires_in (GitLab's clock), else now + expires_in. */
export function parseTokenResponse(json: GitlabTokenJson, nowMs: number = Date.now(), previousRefreshToken?: string): GitlabTokens {
  const accessToken = typeof json.access_token === 'string' ? json.access_token : '';
  const refreshToken = typeof json.refresh_token === 'string' ? json.refresh_token : (previousRefreshToken ?? '');
  if (!accessToken || !refreshToken) {
    throw new ProviderError('provider_unavailable', 'GitLab answered the token request without an access and refresh token');
  }
  const expiresIn = Number(json.expires_in);
  const lifetime = Number.isFinite(expiresIn) && expiresIn > 0 ? expiresIn : DEFAULT_LIFETIME_SECONDS;
  const createdAt = Number(json.created_at);
  const startMs = Number.isFinite(createdAt) && createdAt > 0 ? createdAt * 1000 : nowMs;
  return { accessToken, refreshToken, expiresAt: new Date(startMs + lifetime * 1000) };
}

/** An HTTP failure with the parsed JSON body GitLab sent (OAuth `error`, API `message`). */
export interface GitlabFailure extends HttpFailure {
  body?: unknown;
}

function field(body: unknown, name: string): string | undefined {
  if (typeof body !== 'object' || body === null) return undefined;
  const value = (body as Record<string, unknown>)[name];
  return typeof value === 'string' ? value : undefined;
}

function unavailable(failure: GitlabFailure, action: string): ProviderError | undefined {
  const { status } = failure;
  if (status === undefined || status === 0) {
    return new ProviderError(
      'provider_unavailable',
      `GitLab did not answer ${action} (${redactSecrets(failure.message || 'network error or timeout')})`,
    );
  }
  if (status === 429 || status >= 500) {
    return new ProviderError('provider_unavailable', `GitLab failed ${action} (${status})`, status, retryAfterSeconds(failure.headers));
  }
  return undefined;
}

/** Classifies a failed POST /oauth/token; invalid_grant means the grant is gone and a person must reconnect. */
export function classifyGitlabTokenFailure(failure: GitlabFailure, action: string): ProviderError {
  const early = unavailable(failure, action);
  if (early) return early;
  const error = field(failure.body, 'error');
  const description = redactSecrets(field(failure.body, 'error_description') ?? '').slice(0, 300);
  if (error === 'invalid_grant') {
    return new ProviderError(
      'reconnect_required',
      `GitLab refused the grant while ${action}; the account must be reconnected`,
      failure.status,
    );
  }
  if (error === 'invalid_client' || failure.status === 401) {
    return new ProviderError(
      'provider_unavailable',
      `GitLab rejected the OAuth application while ${action}: check GITLAB_CLIENT_ID and GITLAB_CLIENT_SECRET`,
      failure.status,
    );
  }
  const detail = [error, description].filter(Boolean).join(': ');
  return new ProviderError(
    'provider_unavailable',
    `GitLab answered ${failure.status} while ${action}${detail ? ` (${detail})` : ''}`,
    failure.status,
  );
}

/** Classifies a failed /api/v4 call: a rejected token is invalid_credentials (refresh, then reconnect). */
export function classifyGitlabApiFailure(failure: GitlabFailure, action: string): ProviderError {
  const early = unavailable(failure, action);
  if (early) return early;
  if (failure.status === 401) {
    return new ProviderError('invalid_credentials', `GitLab rejected the access token while ${action}`, 401);
  }
  if (failure.status === 403 && field(failure.body, 'error') === 'insufficient_scope') {
    return new ProviderError(
      'reconnect_required',
      `the GitLab grant lacks the scopes ${GITLAB_SCOPES} needed for ${action}; reconnect the account`,
      403,
    );
  }
  const message = redactSecrets(field(failure.body, 'message') ?? field(failure.body, 'error') ?? '').slice(0, 300);
  const hint = failure.status === 404 ? ' (check GITLAB_URL / the integration base URL)' : '';
  return new ProviderError(
    'provider_unavailable',
    `GitLab answered ${failure.status} while ${action}${message ? `: ${message}` : ''}${hint}`,
    failure.status,
  );
}

/** The GitLab project fields this service reads. */
export interface GitlabProjectJson {
  id: number;
  name?: string;
  path: string;
  path_with_namespace: string;
  visibility?: string;
  default_branch?: string | null;
  http_url_to_repo: string;
  archived?: boolean;
}

/** Maps a project; `name` is the URL path (what git and the rig use), not the display name. */
export function toPlatformProject(project: GitlabProjectJson): PlatformRepository {
  return {
    id: project.id,
    name: project.path,
    full_name: project.path_with_namespace,
    private: project.visibility !== 'public',
    default_branch: project.default_branch || 'main',
    clone_url: project.http_url_to_repo,
    platform: 'gitlab',
  };
}

/** Non-archived projects, mapped. */
export function activeProjects(projects: GitlabProjectJson[]): PlatformRepository[] {
  return projects.filter((p) => !p.archived).map(toPlatformProject);
}

/** The page X-Next-Page names, or undefined on the last page (GitLab sends it empty). */
export function nextPage(header: string | null | undefined): number | undefined {
  const n = Number(header ?? '');
  return header && Number.isInteger(n) && n > 0 ? n : undefined;
}

/**
 * Classifies a failed project access token call. A 401 on a rotation means the token to rotate is
 * gone (GitLab answers 401 for revoked, expired and unknown tokens); elsewhere it is the grant's
 * access token being rejected.
 */
export function classifyProjectTokenFailure(failure: GitlabFailure, action: string, rotating = false): ProviderError | ProjectTokenRefused {
  const early = unavailable(failure, action);
  if (early) return early;
  const status = failure.status as number;
  const said = redactSecrets(field(failure.body, 'message') ?? field(failure.body, 'error') ?? '').slice(0, 200);
  const answered = `GitLab answered ${status} while ${action}${said ? ` (${said})` : ''}`;
  if (rotating && (status === 401 || status === 404 || status === 400)) return new ProjectTokenRefused('token_gone', answered, status);
  if (status === 401) return new ProviderError('invalid_credentials', `GitLab rejected the access token while ${action}`, 401);
  if (status === 403 && field(failure.body, 'error') === 'insufficient_scope') {
    return new ProjectTokenRefused(
      'insufficient_scope',
      `the GitLab grant lacks the api scope needed for ${action}: reconnect GitLab`,
      403,
    );
  }
  if (status === 403) {
    return new ProjectTokenRefused(
      'forbidden',
      `${answered}: project access tokens need the Maintainer or Owner role on the project, and on GitLab.com a Premium or Ultimate plan`,
      403,
    );
  }
  if (status === 404)
    return new ProjectTokenRefused('not_available', `${answered}: project access tokens are switched off or the project is gone`, 404);
  return new ProjectTokenRefused('refused', answered, status);
}

/** A create or rotate answer → ProjectAccessToken; anything else is GitLab misbehaving. */
export function parseProjectAccessToken(json: unknown, action: string): ProjectAccessToken {
  const b = (json ?? {}) as { id?: unknown; token?: unknown; expires_at?: unknown };
  if (typeof b.id !== 'number' || typeof b.token !== 'string' || !b.token || typeof b.expires_at !== 'string') {
    throw new ProviderError('provider_unavailable', `GitLab answered ${action} without a token id, token and expiry date`);
  }
  return { id: b.id, token: b.token, expiresAt: b.expires_at };
}
