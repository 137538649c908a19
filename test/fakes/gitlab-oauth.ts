// The fake GitLab's OAuth side (Doorkeeper's rules): authorize page, single-use PKCE-bound codes,
// rotating refresh tokens whose predecessors die at once, and token revocation.
import { createHash, randomBytes } from 'node:crypto';
import { escapeHtml, type FakeRequest, type FakeResponse } from './fake-http';

export interface OAuthApplication {
  clientId: string;
  clientSecret: string;
  /** One redirect URI per line, as GitLab's application form takes them. */
  redirectUri: string;
  /** The scopes the application may ask for (space-separated); default those repo-connect asks for, now and before. */
  scopes?: string;
}

interface AccessRecord {
  userId: number;
  clientId: string;
  /** Space-separated, as granted at authorization and kept by every refresh. */
  scope: string;
  refreshToken: string;
  expiresAtMs: number;
  revoked: boolean;
}

export const DEFAULT_APP_SCOPES = 'api read_api read_user write_repository';

interface CodeRecord {
  clientId: string;
  redirectUri: string;
  challenge?: string;
  userId: number;
  scope: string;
  expiresAtMs: number;
}

const INVALID_GRANT = {
  error: 'invalid_grant',
  error_description:
    'The provided authorization grant is invalid, expired, revoked, does not match the redirection URI used in the authorization request, or was issued to another client.',
};
const INVALID_CLIENT = {
  error: 'invalid_client',
  error_description:
    'Client authentication failed due to unknown client, no client authentication included, or unsupported authentication method.',
};
const CODE_TTL_MS = 10 * 60_000;
/**
 * What a grant carries when a test does not say: the scopes the service asked for before it
 * needed `api`, so such grants exercise the shared-grant path (no project access tokens).
 */
export const LEGACY_SCOPE = 'read_api read_user write_repository';

const hex64 = (): string => randomBytes(32).toString('hex');
const page = (title: string, body: string): string =>
  `<!doctype html><html><head><title>${escapeHtml(title)}</title></head><body>${body}</body></html>`;

export class GitlabOAuth {
  readonly apps = new Map<string, OAuthApplication>();
  accessTokenLifetimeSeconds = 7200;
  readonly stats = { refreshes: 0, invalidGrants: 0, codeExchanges: 0, revokes: 0 };
  private readonly access = new Map<string, AccessRecord>();
  /** refresh token → the access token it was issued with; deleted once used or revoked. */
  private readonly refresh = new Map<string, string>();
  private readonly codes = new Map<string, CodeRecord>();
  private readonly everIssued: string[] = [];
  private readonly everCodes: string[] = [];

  /** Issues a fresh access/refresh pair for a user and client. */
  issue(
    userId: number,
    clientId: string,
    nowMs = Date.now(),
    scope = LEGACY_SCOPE,
  ): { accessToken: string; refreshToken: string; expiresAt: Date; createdAtSec: number } {
    const accessToken = hex64();
    const refreshToken = hex64();
    const expiresAtMs = nowMs + this.accessTokenLifetimeSeconds * 1000;
    this.access.set(accessToken, { userId, clientId, scope, refreshToken, expiresAtMs, revoked: false });
    this.refresh.set(refreshToken, accessToken);
    this.everIssued.push(accessToken, refreshToken);
    return { accessToken, refreshToken, expiresAt: new Date(expiresAtMs), createdAtSec: Math.floor(nowMs / 1000) };
  }

  /** The user an access token belongs to, when it is live. */
  userOf(accessToken: string | undefined, nowMs = Date.now()): number | undefined {
    return this.grantOf(accessToken, nowMs)?.userId;
  }

  /** The user and scopes of a live access token. */
  grantOf(accessToken: string | undefined, nowMs = Date.now()): { userId: number; scopes: string[] } | undefined {
    const record = accessToken ? this.access.get(accessToken) : undefined;
    return record && !record.revoked && nowMs < record.expiresAtMs ? { userId: record.userId, scopes: record.scope.split(' ') } : undefined;
  }

  /** The scopes of a live access token (none for a dead or unknown one). */
  scopesOf(accessToken: string | undefined, nowMs = Date.now()): string[] {
    if (this.userOf(accessToken, nowMs) === undefined) return [];
    return this.access.get(accessToken!)!.scope.split(' ').filter(Boolean);
  }

  /** Kills every token of a user (the user revoked the application). */
  revokeUser(userId: number): void {
    for (const record of this.access.values()) {
      if (record.userId !== userId) continue;
      record.revoked = true;
      this.refresh.delete(record.refreshToken);
    }
  }

  issuedTokens(): string[] {
    return [...this.everIssued];
  }
  issuedCodes(): string[] {
    return [...this.everCodes];
  }

  /** GET /oauth/authorize: validates the client and exact redirect URI, then shows the consent page. */
  authorizePage(req: FakeRequest, action: string): FakeResponse {
    const params = Object.fromEntries(req.query);
    const problem = this.authorizeProblem(params);
    if (problem) return { status: 400, html: page('An error has occurred', `<h1>An error has occurred</h1><p>${escapeHtml(problem)}</p>`) };
    const hidden = Object.entries(params)
      .map(([k, v]) => `<input type="hidden" name="${escapeHtml(k)}" value="${escapeHtml(v)}">`)
      .join('');
    const body = `<h1>Authorize ${escapeHtml(params.client_id)} to use your account?</h1><p>Scopes: ${escapeHtml(params.scope ?? '')}</p>
<form method="post" action="${escapeHtml(action)}">${hidden}<button type="submit" name="decision" value="allow">Authorize</button>
<button type="submit" name="decision" value="deny">Deny</button></form>`;
    return { status: 200, html: page('Authorize application', body) };
  }

  /** POST /oauth/authorize: the user's decision, answered with a redirect to the client. */
  authorizeSubmit(req: FakeRequest, userId: number, nowMs = Date.now()): FakeResponse {
    const params = Object.fromEntries(Object.entries(req.body).map(([k, v]) => [k, String(v)]));
    const problem = this.authorizeProblem(params);
    if (problem) return { status: 400, html: page('An error has occurred', `<p>${escapeHtml(problem)}</p>`) };
    const target = new URL(params.redirect_uri);
    if (params.decision === 'deny') {
      target.searchParams.set('error', 'access_denied');
      target.searchParams.set('error_description', 'The resource owner or authorization server denied the request.');
    } else {
      const code = hex64();
      this.codes.set(code, {
        clientId: params.client_id,
        redirectUri: params.redirect_uri,
        challenge: params.code_challenge,
        userId,
        scope: params.scope ?? '',
        expiresAtMs: nowMs + CODE_TTL_MS,
      });
      this.everCodes.push(code);
      target.searchParams.set('code', code);
    }
    if (params.state) target.searchParams.set('state', params.state);
    return { status: 302, headers: { location: target.toString() } };
  }

  /** POST /oauth/token: authorization_code and refresh_token grants. */
  token(req: FakeRequest, nowMs = Date.now()): FakeResponse {
    const body = Object.fromEntries(Object.entries(req.body).map(([k, v]) => [k, String(v)]));
    const [basicId, basicSecret] = basicAuth(req.headers.authorization);
    const clientId = body.client_id ?? basicId;
    const app = clientId ? this.apps.get(clientId) : undefined;
    if (!app || app.clientSecret !== (body.client_secret ?? basicSecret)) return { status: 401, json: INVALID_CLIENT };
    const invalidGrant = (): FakeResponse => {
      this.stats.invalidGrants++;
      return { status: 400, json: INVALID_GRANT };
    };
    let userId: number;
    let scope = LEGACY_SCOPE;
    if (body.grant_type === 'authorization_code') {
      const code = this.codes.get(body.code ?? '');
      if (!code || code.clientId !== app.clientId || nowMs >= code.expiresAtMs || code.redirectUri !== body.redirect_uri)
        return invalidGrant();
      if (
        code.challenge &&
        createHash('sha256')
          .update(body.code_verifier ?? '')
          .digest('base64url') !== code.challenge
      )
        return invalidGrant();
      this.codes.delete(body.code);
      this.stats.codeExchanges++;
      userId = code.userId;
      scope = code.scope || scope;
    } else if (body.grant_type === 'refresh_token') {
      const oldAccess = this.refresh.get(body.refresh_token ?? '');
      const record = oldAccess ? this.access.get(oldAccess) : undefined;
      if (!record || record.clientId !== app.clientId) return invalidGrant();
      // Rotation: the presented refresh token and its access token die now, not at expiry.
      this.refresh.delete(body.refresh_token);
      record.revoked = true;
      this.stats.refreshes++;
      userId = record.userId;
      scope = record.scope;
    } else {
      return {
        status: 400,
        json: {
          error: 'unsupported_grant_type',
          error_description: 'The authorization grant type is not supported by the authorization server.',
        },
      };
    }
    const issued = this.issue(userId, app.clientId, nowMs, scope);
    return {
      status: 200,
      json: {
        access_token: issued.accessToken,
        token_type: 'Bearer',
        expires_in: this.accessTokenLifetimeSeconds,
        refresh_token: issued.refreshToken,
        scope,
        created_at: issued.createdAtSec,
      },
    };
  }

  /** POST /oauth/revoke (RFC 7009): the pair behind either token dies; unknown tokens still get 200. */
  revoke(req: FakeRequest): FakeResponse {
    const token = String(req.body.token ?? '');
    const accessToken = this.access.has(token) ? token : this.refresh.get(token);
    const record = accessToken ? this.access.get(accessToken) : undefined;
    if (record) {
      record.revoked = true;
      this.refresh.delete(record.refreshToken);
      this.stats.revokes++;
    }
    return { status: 200, json: {} };
  }

  private authorizeProblem(params: Record<string, string>): string | undefined {
    const app = this.apps.get(params.client_id ?? '');
    if (!app)
      return 'Client authentication failed due to unknown client, no client authentication included, or unsupported authentication method.';
    if (!app.redirectUri.split('\n').includes(params.redirect_uri)) return 'The redirect URI included is not valid.';
    const allowed = (app.scopes ?? DEFAULT_APP_SCOPES).split(' ');
    if ((params.scope ?? '').split(' ').some((s) => !allowed.includes(s))) return 'The requested scope is invalid, unknown, or malformed.';
    if (params.response_type !== 'code') return 'The authorization server does not support this response type.';
    if (params.code_challenge && params.code_challenge_method !== 'S256') return 'The code challenge method must be S256.';
    return undefined;
  }
}

function basicAuth(header: string | undefined): [string | undefined, string | undefined] {
  const match = /^basic\s+(\S+)$/i.exec(header ?? '');
  if (!match) return [undefined, undefined];
  const [id, secret] = Buffer.from(match[1], 'base64').toString('utf8').split(':');
  return [decodeURIComponent(id ?? ''), decodeURIComponent(secret ?? '')];
}
