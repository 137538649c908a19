// Pure pieces of the GitHub client: error classification, repository mapping and URL derivation.
// Kept free of I/O so every mapping can be unit-tested without a server.
import { createPrivateKey, sign } from 'node:crypto';
import type { AppType } from '../config';
import { ProviderError, type GithubInstallation, type PlatformRepository } from './types';

/** Which kind of GitHub endpoint failed: the mapping of 401/404/422 depends on it. */
export type GithubEndpointKind = 'app' | 'access_tokens' | 'installation_token';

/** What an HTTP failure looked like, independent of octokit's error classes. */
export interface HttpFailure {
  /** Absent when no response arrived (network error, timeout). */
  status?: number;
  headers?: Record<string, string | number | undefined>;
  /** The provider's `message` (or another short description). */
  message?: string;
}

/** GitHub's repository fields this service reads. */
export interface GithubRepositoryJson {
  id: number;
  name: string;
  full_name: string;
  private: boolean;
  default_branch?: string | null;
  clone_url?: string | null;
  archived?: boolean;
}

// ghp_/ghs_/gho_/ghu_/ghr_/github_pat_ tokens, JWTs and bearer/token headers: anything that might
// ride along in an upstream message is cut out before it can reach a log line or an API response.
const SECRET_PATTERNS: RegExp[] = [
  /\bgh[opsur]_[A-Za-z0-9_-]{10,}/g,
  /\bgithub_pat_[A-Za-z0-9_]{10,}/g,
  /\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*/g,
  /\b(bearer|token)\s+[A-Za-z0-9._~+/=-]{16,}/gi,
  /\b[a-f0-9]{40,}\b/g,
];

/** Removes anything token-shaped from a message. */
export function redactSecrets(text: string): string {
  return SECRET_PATTERNS.reduce((t, re) => t.replace(re, '[REDACTED]'), text);
}

/** Maps a GitHub repository to the contract's PlatformRepository; clone_url is kept as GitHub gives it. */
export function toPlatformRepository(repo: GithubRepositoryJson): PlatformRepository {
  return {
    id: repo.id,
    name: repo.name,
    full_name: repo.full_name,
    private: repo.private,
    default_branch: repo.default_branch || 'main',
    clone_url: repo.clone_url ?? '',
    platform: 'github',
  };
}

/** GitHub's installation JSON as the service models it; enterprise accounts carry a slug, not a login. */
export function toGithubInstallation(json: {
  id: number;
  account?: { login?: string; slug?: string; id?: number | bigint; type?: string } | null;
  suspended_at?: string | null;
  repository_selection?: string;
}): GithubInstallation {
  const account = json.account ?? {};
  return {
    id: json.id,
    account: {
      login: account.login ?? account.slug ?? '',
      id: Number(account.id ?? 0),
      type: account.type ?? (account.slug ? 'Enterprise' : 'User'),
    },
    suspendedAt: json.suspended_at ?? null,
    repositorySelection: json.repository_selection === 'all' ? 'all' : 'selected',
  };
}

/** Active (non-archived) repositories mapped for the dashboard. */
export function activeRepositories(repos: GithubRepositoryJson[]): PlatformRepository[] {
  return repos.filter((r) => !r.archived).map(toPlatformRepository);
}

/** The GitHub web host for an API base: api.github.com → github.com, `<origin>/api/v3` (GHES) → `<origin>`. */
export function githubWebUrl(apiUrl: string): string {
  const url = new URL(apiUrl);
  if (url.hostname === 'api.github.com') return 'https://github.com';
  if (url.hostname.startsWith('api.') && url.hostname.endsWith('.ghe.com')) {
    // GitHub Enterprise Cloud with data residency: api.<sub>.ghe.com serves <sub>.ghe.com.
    return `${url.protocol}//${url.hostname.slice(4)}`;
  }
  const prefix = url.pathname.replace(/\/+$/, '').replace(/\/api\/v3$/, '');
  return `${url.origin}${prefix}`;
}

/** The app's installation page; github.com says /apps/<slug>, GHES /github-apps/<slug>. */
export function githubInstallUrl(apiUrl: string, slug: string, state: string): string {
  const web = githubWebUrl(apiUrl);
  const section = web === 'https://github.com' || web.endsWith('.ghe.com') ? 'apps' : 'github-apps';
  return `${web}/${section}/${encodeURIComponent(slug)}/installations/new?state=${encodeURIComponent(state)}`;
}

function header(headers: HttpFailure['headers'], name: string): string | undefined {
  const value = headers?.[name] ?? headers?.[name.toLowerCase()];
  return value === undefined ? undefined : String(value);
}

/** Seconds to wait from Retry-After (seconds or HTTP date) or an exhausted x-ratelimit-reset. */
export function retryAfterSeconds(headers: HttpFailure['headers'], nowMs: number = Date.now()): number | undefined {
  const retryAfter = header(headers, 'retry-after');
  if (retryAfter !== undefined) {
    const seconds = Number(retryAfter);
    if (Number.isFinite(seconds)) return Math.max(0, Math.ceil(seconds));
    const at = Date.parse(retryAfter);
    if (!Number.isNaN(at)) return Math.max(0, Math.ceil((at - nowMs) / 1000));
  }
  const reset = Number(header(headers, 'x-ratelimit-reset'));
  if (header(headers, 'x-ratelimit-remaining') === '0' && Number.isFinite(reset) && reset > 0) {
    return Math.max(1, Math.ceil(reset - nowMs / 1000));
  }
  return undefined;
}

/**
 * True when a GitHub 403/429 is a primary or secondary rate limit rather than a permission problem:
 * an exhausted `x-ratelimit-remaining`, a `retry-after` (GitHub's documented sign of a secondary
 * limit), or the message (older GitHub Enterprise Servers say "abuse detection mechanism").
 */
export function isRateLimited(failure: HttpFailure): boolean {
  if (failure.status === 429) return true;
  if (failure.status !== 403) return false;
  return (
    header(failure.headers, 'x-ratelimit-remaining') === '0' ||
    header(failure.headers, 'retry-after') !== undefined ||
    /rate limit|abuse detection/i.test(failure.message ?? '')
  );
}

const APP_VARS: Record<AppType, string> = {
  standard: 'GITHUB_APP_ID / GITHUB_APP_PRIVATE_KEY',
  lite: 'GITHUB_LITE_APP_ID / GITHUB_LITE_APP_PRIVATE_KEY',
};

/** Turns a failed GitHub call into a ProviderError the caller can act on; never echoes a token. */
export function classifyGithubFailure(
  failure: HttpFailure,
  ctx: { kind: GithubEndpointKind; action: string; appType?: AppType; nowMs?: number },
): ProviderError {
  const { status } = failure;
  const upstream = redactSecrets((failure.message ?? '').slice(0, 300));
  const detail = upstream ? `: ${upstream}` : '';
  const fail = (code: ConstructorParameters<typeof ProviderError>[0], message: string, retryAfter?: number) =>
    new ProviderError(code, message, status, retryAfter);

  if (status === undefined || status === 0) {
    return fail('provider_unavailable', `GitHub did not answer ${ctx.action} (${upstream || 'network error or timeout'})`);
  }
  if (isRateLimited(failure)) {
    const wait = retryAfterSeconds(failure.headers, ctx.nowMs);
    return fail('provider_unavailable', `GitHub rate-limited ${ctx.action} (${status})${detail}`, wait);
  }
  if (status >= 500) {
    return fail('provider_unavailable', `GitHub failed ${ctx.action} (${status})${detail}`, retryAfterSeconds(failure.headers, ctx.nowMs));
  }
  if (status === 403 && /suspended/i.test(upstream)) {
    return fail('installation_suspended', `the GitHub App installation is suspended (${ctx.action})`);
  }
  if (status === 404) {
    return fail('installation_not_found', `the GitHub App installation was not found; it may have been uninstalled (${ctx.action})`);
  }
  if (ctx.kind !== 'installation_token' && status === 401) {
    const vars = ctx.appType ? APP_VARS[ctx.appType] : 'the GitHub App id / private key';
    return fail('provider_unavailable', `GitHub rejected the app's JWT during ${ctx.action}: check ${vars}${detail}`);
  }
  if (ctx.kind === 'access_tokens' && (status === 422 || status === 403)) {
    return fail('repository_not_accessible', `GitHub refused a token for ${ctx.action} (${status})${detail}`);
  }
  if (ctx.kind === 'installation_token' && status === 401) {
    return fail('invalid_credentials', `GitHub rejected the installation token during ${ctx.action} (401)${detail}`);
  }
  return fail('provider_unavailable', `GitHub answered ${status} to ${ctx.action}${detail}`);
}

/** Reads an octokit RequestError (or a raw fetch failure) into an HttpFailure without keeping request headers. */
export function toHttpFailure(err: unknown): HttpFailure {
  const e = (err ?? {}) as {
    status?: number;
    message?: string;
    name?: string;
    cause?: { name?: string; message?: string };
    response?: { status?: number; headers?: HttpFailure['headers']; data?: unknown };
  };
  if (!e.response) {
    // No response: octokit reports network failures and aborts as status 500, which would look like
    // a server error; say what actually happened instead.
    const timedOut = e.name === 'TimeoutError' || e.cause?.name === 'TimeoutError' || e.name === 'AbortError';
    return { message: timedOut ? 'timed out' : e.cause?.message || e.message || 'network error' };
  }
  const data = e.response.data as { message?: unknown } | string | undefined;
  const message =
    typeof data === 'object' && data && typeof data.message === 'string' ? data.message : typeof data === 'string' ? data : e.message;
  return { status: e.response.status ?? e.status, headers: e.response.headers, message };
}

/** What auth-app's `createJwt` option returns. */
export interface AppJwt {
  jwt: string;
  expiresAt: string;
}

// GitHub accepts app JWTs for at most 10 minutes. iat is backdated 30 s against clock drift (as
// auth-app does); a JWT is reused for 4.5 minutes after signing, so at least 5 minutes of validity remain.
const JWT_LIFETIME_SECONDS = 600;
const JWT_BACKDATE_SECONDS = 30;
const JWT_REUSE_SECONDS = 300;

/**
 * An RS256 app-JWT signer for auth-app's `createJwt` option that parses the key once and reuses a
 * JWT for a few minutes: auth-app re-imports the key and signs on every request (~5 ms), which a
 * burst of a thousand mints on a small machine pays for in seconds of CPU.
 *
 * Clock skew: when GitHub refuses a JWT's times, auth-app retries the request with the difference
 * its Date header shows (`timeDifference`), but asks the next time without one. The signer keeps the
 * last difference given and applies it when none is, so a skewed clock costs one refused request,
 * not one per request (with two signatures each); a later retry's difference (0 too) replaces it.
 */
export function createAppJwtSigner(
  privateKeyPem: string,
  nowMs: () => number = Date.now,
): (appId: string | number, timeDifference?: number) => Promise<AppJwt> {
  const key = createPrivateKey(privateKeyPem);
  let cached: (AppJwt & { reuseUntil: number; appId: string; skew: number }) | undefined;
  let learnedSkew = 0;
  return async (appId, given) => {
    if (given !== undefined) learnedSkew = given;
    const timeDifference = learnedSkew;
    const now = Math.floor(nowMs() / 1000) + timeDifference;
    if (cached && cached.appId === String(appId) && cached.skew === timeDifference && now < cached.reuseUntil) {
      return { jwt: cached.jwt, expiresAt: cached.expiresAt };
    }
    const iat = now - JWT_BACKDATE_SECONDS;
    const exp = iat + JWT_LIFETIME_SECONDS;
    const encode = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
    // iss is the app id as a number when it is one, as GitHub's docs show it.
    const iss = /^\d+$/.test(String(appId)) ? Number(appId) : String(appId);
    const unsigned = `${encode({ alg: 'RS256', typ: 'JWT' })}.${encode({ iat, exp, iss })}`;
    const jwt = `${unsigned}.${sign('RSA-SHA256', Buffer.from(unsigned), key).toString('base64url')}`;
    const expiresAt = new Date(exp * 1000).toISOString();
    cached = { jwt, expiresAt, reuseUntil: iat + JWT_REUSE_SECONDS, appId: String(appId), skew: timeDifference };
    return { jwt, expiresAt };
  };
}
