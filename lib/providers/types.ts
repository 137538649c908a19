// What the rest of the service knows about GitHub and GitLab. Clients implement these interfaces;
// activities and API services depend on them (or Picks of them), never on octokit or fetch directly.
import type { AppType } from '../config';
import type { FailureCode } from '../../workflows/failure-types';

/** A repository as the dashboard and the rig API show it (the contract's PlatformRepository). */
export interface PlatformRepository {
  id: number;
  name: string;
  full_name: string;
  private: boolean;
  default_branch: string;
  clone_url: string;
  platform: 'github' | 'gitlab';
}

export type ProviderErrorCode = Exclude<FailureCode, 'no_credentials' | 'container_gone'> | 'invalid_credentials';

/**
 * A provider call failed in a way the caller can act on. `retryable` is true only for
 * provider_unavailable (5xx, 429, timeouts, network errors). Messages never contain tokens.
 */
export class ProviderError extends Error {
  constructor(
    readonly code: ProviderErrorCode,
    message: string,
    readonly status?: number,
    /** Seconds the provider asked us to wait (Retry-After / rate-limit reset), when it said. */
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
    this.name = 'ProviderError';
  }

  get retryable(): boolean {
    return this.code === 'provider_unavailable';
  }
}

export interface GithubInstallation {
  id: number;
  account: { login: string; id: number; type: string };
  /** ISO time, or null when active. */
  suspendedAt: string | null;
  repositorySelection: 'all' | 'selected';
}

export interface MintedGithubToken {
  token: string;
  expiresAt: Date;
  permissions: Record<string, string>;
}

/** What a rig's agents may do in its repository: clone and push, or clone and fetch only. */
export type RepoAccess = 'read' | 'write';

/** Least privilege per app type: git needs contents, GitHub always grants metadata:read. */
export const GITHUB_TOKEN_PERMISSIONS: Record<AppType, Record<string, 'read' | 'write'>> = {
  standard: { contents: 'write', metadata: 'read' },
  lite: { contents: 'read', metadata: 'read' },
};

/** A token's permissions: the app type's, narrowed to read-only contents for a rig that only reads. */
export function githubTokenPermissions(appType: AppType, access: RepoAccess): Record<string, 'read' | 'write'> {
  return { ...GITHUB_TOKEN_PERMISSIONS[access === 'read' ? 'lite' : appType] };
}

export interface GithubClient {
  /** Whether an app of this type is configured. */
  hasApp(appType: AppType): boolean;
  /** GET /app/installations/{id} with the app JWT. */
  getInstallation(appType: AppType, installationId: number): Promise<GithubInstallation>;
  /**
   * POST /app/installations/{id}/access_tokens: always a new token (never a cached one), scoped to
   * `repositoryIds` with the app type's permissions (`contents: read` whatever the app for `access` read).
   */
  mintInstallationToken(appType: AppType, installationId: number, repositoryIds: number[], access?: RepoAccess): Promise<MintedGithubToken>;
  /**
   * One cheap authenticated call (GET /installation/repositories?per_page=1) that a new token must
   * pass before it is handed out; retries the brief 401 window of a freshly minted token.
   */
  verifyInstallationToken(token: string): Promise<void>;
  /** Every repository of the installation (all pages), archived ones left out. */
  listInstallationRepositories(appType: AppType, installationId: number): Promise<PlatformRepository[]>;
  /** DELETE /installation/token. A token that is already expired or revoked is not an error. */
  revokeInstallationToken(token: string): Promise<'revoked' | 'already_invalid'>;
  /** The app's "install" page on the GitHub web host, carrying `state`. */
  installUrl(appType: AppType, state: string): string;
}

export interface GitlabTokens {
  accessToken: string;
  refreshToken: string;
  expiresAt: Date;
}

export interface GitlabUser {
  id: number;
  username: string;
  name?: string;
  avatarUrl?: string;
}

/** A project access token as GitLab just issued it (create or rotate). */
export interface ProjectAccessToken {
  id: number;
  token: string;
  /** GitLab's date (YYYY-MM-DD): the token stops working when that day starts on the server. */
  expiresAt: string;
}

/** A project access token as GitLab lists it (never with its secret). */
export interface ProjectAccessTokenInfo {
  id: number;
  name: string;
  active: boolean;
}

export type ProjectTokenRefusal = 'insufficient_scope' | 'forbidden' | 'not_available' | 'refused' | 'token_gone';

/**
 * GitLab will not issue (or rotate) a project access token here: `insufficient_scope` (the grant
 * lacks `api`), `forbidden` (role below Maintainer, or a plan without project tokens),
 * `not_available` (switched off, or the project is gone), `refused` (any other 4xx), `token_gone`
 * (the token to rotate is revoked, expired or unknown). Never carries a token.
 */
export class ProjectTokenRefused extends Error {
  constructor(
    readonly reason: ProjectTokenRefusal,
    message: string,
    readonly status: number,
  ) {
    super(message);
    this.name = 'ProjectTokenRefused';
  }
}

interface ProjectCall {
  baseUrl: string;
  /** The grant's OAuth access token (needs the `api` scope). */
  accessToken: string;
  projectId: number;
}

export interface GitlabClient {
  /** Whether the OAuth application is configured. */
  isConfigured(): boolean;
  /** <base>/oauth/authorize with PKCE S256. */
  authorizeUrl(args: { baseUrl: string; state: string; codeChallenge: string; redirectUri: string; scope?: string }): string;
  /** authorization_code grant. */
  exchangeCode(args: { baseUrl: string; code: string; codeVerifier: string; redirectUri: string }): Promise<GitlabTokens>;
  /** refresh_token grant. The old refresh token dies; `invalid_grant` → ProviderError reconnect_required. */
  refresh(args: { baseUrl: string; refreshToken: string }): Promise<GitlabTokens>;
  /** GET /api/v4/user. A rejected token → ProviderError invalid_credentials. */
  getUser(args: { baseUrl: string; accessToken: string }): Promise<GitlabUser>;
  /** GET /api/v4/projects?membership=true, every page (X-Next-Page), archived ones left out. */
  listProjects(args: { baseUrl: string; accessToken: string }): Promise<PlatformRepository[]>;
  /** GET /api/v4/projects/:id/access_tokens?state=active&search=: the active tokens whose name contains `search`. */
  listProjectAccessTokens(args: ProjectCall & { search: string }): Promise<ProjectAccessTokenInfo[]>;
  /** POST /api/v4/projects/:id/access_tokens. Refusals → ProjectTokenRefused. */
  createProjectAccessToken(
    args: ProjectCall & { name: string; scopes: string[]; accessLevel: number; expiresAt: string },
  ): Promise<ProjectAccessToken>;
  /** POST …/access_tokens/:token_id/rotate: the old token dies at once; the new one has a new id. */
  rotateProjectAccessToken(args: ProjectCall & { tokenId: number; expiresAt: string }): Promise<ProjectAccessToken>;
  /** DELETE …/access_tokens/:token_id; a token GitLab no longer knows (404) is `already_invalid`. */
  revokeProjectAccessToken(args: ProjectCall & { tokenId: number }): Promise<'revoked' | 'already_invalid'>;
}

/** A GitHub App's user-to-server token pair; the expiries are null when the app does not expire user tokens. */
export interface GithubUserTokens {
  accessToken: string;
  refreshToken: string | null;
  expiresAt: Date | null;
  refreshTokenExpiresAt: Date | null;
}

export interface GithubUser {
  id: number;
  login: string;
  name: string | null;
  avatarUrl: string | null;
}

/** A GitHub App's user authorization (web flow) and the calls made with a person's user token. */
export interface GithubUserClient {
  /** Whether the app of this type has its OAuth client configured. */
  isConfigured(appType: AppType): boolean;
  /** The GitHub web origin people sign in on (github.com, or the GHES host). */
  readonly webUrl: string;
  /** <web>/login/oauth/authorize for the standard app's client. */
  authorizeUrl(args: { state: string; redirectUri: string }): string;
  /** Trades a web-flow code; `bad_verification_code` → ProviderError reconnect_required. */
  exchangeCode(appType: AppType, args: { code: string; redirectUri?: string }): Promise<GithubUserTokens>;
  /** refresh_token grant (the refresh token rotates); `bad_refresh_token` → ProviderError reconnect_required. */
  refresh(appType: AppType, refreshToken: string): Promise<GithubUserTokens>;
  /** GET /user. A rejected token → ProviderError invalid_credentials. */
  getUser(accessToken: string): Promise<GithubUser>;
  /** Whether GET /user/installations (every page) lists the installation for this person. */
  canSeeInstallation(accessToken: string, installationId: number): Promise<boolean>;
}
