// The fake GitLab's project access tokens, by GitLab's rules: only a Maintainer or Owner may
// create, list, rotate or revoke them, with an OAuth token that has the `api` scope; GitLab.com's
// Free plan refuses them (403) and an instance can switch them off (404). A token expires at the
// start of its `expires_at` date in the server's time zone, rotation kills the old token at once
// (and rotating an already revoked token revokes its whole family: reuse detection), and a token
// works on its own project only.
import { randomBytes } from 'node:crypto';
import type { FakeRequest, FakeResponse } from './fake-http';

export type Role = 'guest' | 'reporter' | 'developer' | 'maintainer' | 'owner';
export const ROLE_LEVEL: Record<Role, number> = { guest: 10, reporter: 20, developer: 30, maintainer: 40, owner: 50 };
const LEVELS = [10, 15, 20, 30, 40, 50];
const SCOPES = ['api', 'read_api', 'read_repository', 'write_repository', 'read_registry', 'write_registry', 'self_rotate'];
const DATE = /^\d{4}-\d{2}-\d{2}$/;
const DAY_MS = 86_400_000;

export interface ProjectTokenRecord {
  id: number;
  projectId: number;
  name: string;
  scopes: string[];
  accessLevel: number;
  /** GitLab's date: the token stops working when this day starts (server time). */
  expiresAt: string;
  token: string;
  revoked: boolean;
  /** Tokens made from one another by rotation share a family. */
  family: number;
  createdAt: string;
}

/** What the project token API needs from the rest of the fake. */
export interface ProjectTokenHost {
  userOf(accessToken: string | undefined): number | undefined;
  scopesOf(accessToken: string | undefined): string[];
  roleOf(userId: number, projectId: number): Role | undefined;
  projectExists(projectId: number): boolean;
  now(): number;
  newId(): number;
}

const json = (status: number, body: unknown): FakeResponse => ({ status, json: body });
const message = (status: number, text: string): FakeResponse => json(status, { message: text });
const INSUFFICIENT_SCOPE = json(403, {
  error: 'insufficient_scope',
  error_description: 'The request requires higher privileges than provided by the access token.',
  scope: 'api',
});

export class ProjectTokenApi {
  /** `premium`/`ultimate` (or self-managed, any tier) allow project tokens; GitLab.com `free` refuses them. */
  plan: 'free' | 'premium' | 'ultimate' = 'premium';
  /** An instance where project access tokens are switched off answers 404. */
  enabled = true;
  /**
   * Some GitLab versions ignore `search` on this list (gitlab-org/gitlab#523193) and answer every
   * token of the project: a client must check the names itself.
   */
  ignoresSearch = false;
  /** Hours the server's clock is ahead of UTC: a token dies when its date starts there. */
  timeZoneOffsetHours = 0;
  readonly stats = { created: 0, rotated: 0, revoked: 0, refused: 0, familiesRevoked: 0 };
  private readonly tokens = new Map<number, ProjectTokenRecord>();

  constructor(private readonly host: ProjectTokenHost) {}

  /** The server's current date (YYYY-MM-DD). */
  today(): string {
    return new Date(this.host.now() + this.timeZoneOffsetHours * 3_600_000).toISOString().slice(0, 10);
  }

  /** A token that is not revoked and whose date has not started on the server. */
  isLive(record: ProjectTokenRecord): boolean {
    return !record.revoked && this.today() < record.expiresAt;
  }

  /** The live project token whose secret is `token`. */
  live(token: string): ProjectTokenRecord | undefined {
    for (const r of this.tokens.values()) if (r.token === token && this.isLive(r)) return r;
    return undefined;
  }

  /** Every project token (live or not) whose secret is `token`, for tests. */
  find(token: string): ProjectTokenRecord | undefined {
    for (const r of this.tokens.values()) if (r.token === token) return r;
    return undefined;
  }

  all(): ProjectTokenRecord[] {
    return [...this.tokens.values()];
  }

  issuedTokens(): string[] {
    return this.all().map((r) => r.token);
  }

  /** Routes `/projects/:id/access_tokens[/:token_id[/rotate]]`; undefined for other paths. */
  handle(req: FakeRequest): FakeResponse | undefined {
    const m = /^\/api\/v4\/projects\/(\d+)\/access_tokens(?:\/(\d+)(\/rotate)?)?$/.exec(req.path);
    if (!m) return undefined;
    const projectId = Number(m[1]);
    const tokenId = m[2] === undefined ? undefined : Number(m[2]);
    const gate = this.gate(req, projectId);
    if ('refused' in gate) {
      this.stats.refused++;
      return gate.refused;
    }
    if (tokenId === undefined && req.method === 'GET') return this.list(req, projectId);
    if (tokenId === undefined && req.method === 'POST') return this.create(req, projectId, gate.role);
    if (tokenId !== undefined && m[3] && req.method === 'POST') return this.rotate(req, projectId, tokenId);
    if (tokenId !== undefined && !m[3] && req.method === 'DELETE') return this.revoke(projectId, tokenId);
    return message(405, '405 Method Not Allowed');
  }

  /** Authentication, scope, feature, project, role and plan, in GitLab's order. */
  private gate(req: FakeRequest, projectId: number): { refused: FakeResponse } | { role: Role } {
    const bearer = /^bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1];
    const userId = this.host.userOf(bearer);
    if (userId === undefined) return { refused: message(401, '401 Unauthorized') };
    if (!this.host.scopesOf(bearer).includes('api')) return { refused: INSUFFICIENT_SCOPE };
    if (!this.enabled) return { refused: message(404, '404 Not Found') };
    const role = this.host.projectExists(projectId) ? this.host.roleOf(userId, projectId) : undefined;
    if (role === undefined) return { refused: message(404, '404 Project Not Found') };
    if (ROLE_LEVEL[role] < ROLE_LEVEL.maintainer) return { refused: message(403, '403 Forbidden') };
    if (this.plan === 'free') return { refused: message(403, '403 Forbidden - Project access tokens are not available on the Free plan') };
    return { role };
  }

  private list(req: FakeRequest, projectId: number): FakeResponse {
    const state = req.query.get('state');
    const search = this.ignoresSearch ? null : req.query.get('search');
    const rows = this.all().filter(
      (r) =>
        r.projectId === projectId &&
        (state === null || (state === 'active') === this.isLive(r)) &&
        (search === null || r.name.includes(search)),
    );
    // Paginated as GitLab does: 20 a page unless per_page says (at most 100), X-Next-Page empty on the last.
    const perPage = Math.min(100, Math.max(1, Number(req.query.get('per_page') ?? 20) || 20));
    const page = Math.max(1, Number(req.query.get('page') ?? 1) || 1);
    const pages = Math.max(1, Math.ceil(rows.length / perPage));
    return {
      status: 200,
      headers: { 'x-page': String(page), 'x-per-page': String(perPage), 'x-next-page': page < pages ? String(page + 1) : '' },
      json: rows.slice((page - 1) * perPage, page * perPage).map((r) => this.present(r, false)),
    };
  }

  private create(req: FakeRequest, projectId: number, role: Role): FakeResponse {
    const b = req.body as { name?: unknown; scopes?: unknown; access_level?: unknown; expires_at?: unknown };
    if (typeof b.name !== 'string' || b.name.trim() === '') return message(400, '400 Bad request - name is missing');
    if (!Array.isArray(b.scopes) || b.scopes.length === 0 || !b.scopes.every((s) => SCOPES.includes(String(s)))) {
      return json(400, { error: 'scopes does not have a valid value' });
    }
    const level = b.access_level === undefined ? 40 : Number(b.access_level);
    if (!LEVELS.includes(level)) return json(400, { error: 'access_level does not have a valid value' });
    if (level > ROLE_LEVEL[role]) return message(400, '400 Bad request - Access level of the token can not be greater than yours');
    const expiresAt = this.expiry(b.expires_at);
    if (typeof expiresAt !== 'string') return expiresAt;
    const id = this.host.newId();
    const record: ProjectTokenRecord = {
      id,
      projectId,
      name: b.name,
      scopes: b.scopes.map(String),
      accessLevel: level,
      expiresAt,
      token: newSecret(),
      revoked: false,
      family: id,
      createdAt: new Date(this.host.now()).toISOString(),
    };
    this.tokens.set(id, record);
    this.stats.created++;
    return json(201, this.present(record, true));
  }

  private rotate(req: FakeRequest, projectId: number, tokenId: number): FakeResponse {
    const old = this.tokens.get(tokenId);
    if (!old || old.projectId !== projectId) return message(401, '401 Unauthorized');
    if (!this.isLive(old)) {
      // Reuse detection: a rotated (revoked) token presented again takes its whole family down.
      if (old.revoked) {
        for (const r of this.tokens.values()) if (r.family === old.family) r.revoked = true;
        this.stats.familiesRevoked++;
      }
      return message(401, '401 Unauthorized');
    }
    const body = req.body as { expires_at?: unknown };
    const expiresAt = body.expires_at === undefined ? dateAfter(this.host.now(), 7) : this.expiry(body.expires_at);
    if (typeof expiresAt !== 'string') return expiresAt;
    old.revoked = true;
    const id = this.host.newId();
    const record: ProjectTokenRecord = {
      ...old,
      id,
      expiresAt,
      token: newSecret(),
      revoked: false,
      createdAt: new Date(this.host.now()).toISOString(),
    };
    this.tokens.set(id, record);
    this.stats.rotated++;
    return json(200, this.present(record, true));
  }

  private revoke(projectId: number, tokenId: number): FakeResponse {
    const record = this.tokens.get(tokenId);
    if (!record || record.projectId !== projectId || !this.isLive(record)) return message(404, '404 Not Found');
    record.revoked = true;
    this.stats.revoked++;
    return { status: 204 };
  }

  /** A valid future date, or the 400 GitLab answers. */
  private expiry(value: unknown): string | FakeResponse {
    if (typeof value !== 'string' || !DATE.test(value) || Number.isNaN(Date.parse(value))) {
      return json(400, { error: 'expires_at is invalid' });
    }
    if (value <= this.today()) return message(400, '400 Bad request - Expiration date must be in the future');
    if (Date.parse(value) - Date.parse(this.today()) > 365 * DAY_MS) {
      return message(400, '400 Bad request - Expiration date must be before the maximum allowable lifetime');
    }
    return value;
  }

  private present(r: ProjectTokenRecord, withToken: boolean) {
    return {
      id: r.id,
      name: r.name,
      revoked: r.revoked,
      active: this.isLive(r),
      created_at: r.createdAt,
      scopes: r.scopes,
      user_id: r.family, // the bot user stays the same across rotations
      expires_at: r.expiresAt,
      access_level: r.accessLevel,
      last_used_at: null,
      ...(withToken ? { token: r.token } : {}),
    };
  }
}

/** The UTC date `days` after `ms`. */
function dateAfter(ms: number, days: number): string {
  return new Date(ms + days * DAY_MS).toISOString().slice(0, 10);
}

/** GitLab's project token format, long enough for the run's log scan to look for it. */
function newSecret(): string {
  return `glpat-${randomBytes(24).toString('base64url')}`;
}
