// GitLab OAuth grants through the management API against fake GitLabs (gitlab.com-like, and a
// self-managed one under /gitlab) with rotating refresh tokens: registration and repositories.
import { randomUUID } from 'node:crypto';
import { gitlabTokenContext } from '../../lib/secret-contexts';
import { newOwner, startHarness, type Harness } from '../helpers/harness';
import {
  expectError,
  expectInvalid,
  expectNoSecrets,
  gitlabGrant,
  gitlabWorld,
  ISO,
  recordResponses,
  type GitlabWorld,
} from '../helpers/api';

let h: Harness;
let world: GitlabWorld;
let selfManaged: GitlabWorld;
let responses: string[];

beforeAll(async () => {
  world = await gitlabWorld();
  selfManaged = await gitlabWorld({ pathPrefix: '/gitlab' });
  // The self-managed instance is one an integration may name (GITLAB_ALLOWED_URLS).
  h = await startHarness({ env: { ...world.env, GITLAB_ALLOWED_URLS: selfManaged.gl.baseUrl }, worker: false });
  responses = recordResponses(h);
});
afterAll(async () => {
  await h?.close();
  await world?.gl.close();
  await selfManaged?.gl.close();
});

interface Integration {
  id: string;
  status: string;
  base_url: string | null;
}
interface RepoList {
  repositories: Array<{ id: number; name: string; full_name: string; clone_url: string; default_branch: string; private: boolean }>;
  synced_at: string | null;
}

async function register(body: Record<string, unknown>, owner = newOwner()) {
  const res = await h.call<Integration>('POST', '/api/integrations', { provider: 'gitlab', owner_id: owner, ...body });
  return { ...res, owner };
}
const repos = (id: string, query = '') => h.call<RepoList>('GET', `/api/integrations/${id}/repositories${query}`);
const row = (id: string) => h.core.db.platformIntegration.findUniqueOrThrow({ where: { id } });

describe('POST /api/integrations (gitlab)', () => {
  it('registers a grant on GITLAB_URL by default, storing the pair encrypted', async () => {
    const g = gitlabGrant(world, { username: `dev-${randomUUID().slice(0, 6)}` });
    const res = await register(g.body);
    expect(res.status).toBe(201);
    expect(res.body).toEqual({
      id: expect.any(String),
      owner_id: res.owner,
      provider: 'gitlab',
      status: 'active',
      status_reason: null,
      account: g.user.username,
      installation_id: null,
      app_type: null,
      base_url: world.gl.baseUrl,
      repository_count: 0,
      repositories_synced_at: null,
      created_at: expect.stringMatching(ISO),
      updated_at: expect.stringMatching(ISO),
    });
    const stored = await row(res.body.id);
    expect(stored.accessTokenEnc).not.toContain(g.grant.accessToken);
    expect(stored.refreshTokenEnc).not.toContain(g.grant.refreshToken);
    expect(stored.accessTokenExpiresAt?.toISOString()).toBe(g.body.expires_at);
  });

  it('registrations of the same grant at once all succeed, on one row holding a working grant', async () => {
    const g = gitlabGrant(world, { username: `twice-${randomUUID().slice(0, 6)}` });
    const owner = newOwner();
    const all = await Promise.all(Array.from({ length: 6 }, () => register(g.body, owner)));
    expect(all.map((r) => r.status)).toEqual(all.map(() => 201));
    expect(new Set(all.map((r) => r.body.id)).size).toBe(1);
    const stored = await row(all[0].body.id);
    // Sealed for the row that keeps it.
    expect(h.core.secrets.decrypt(stored.accessTokenEnc!, gitlabTokenContext(stored.id, 'access'))).toBe(g.grant.accessToken);
  });

  it('registers a self-managed instance under a path prefix and lists its projects there', async () => {
    const g = gitlabGrant(selfManaged, { projects: 2 });
    const res = await register({ ...g.body, base_url: `${selfManaged.gl.baseUrl}/` });
    expect(res.status).toBe(201);
    expect(res.body.base_url).toBe(selfManaged.gl.baseUrl);
    expect(res.body.base_url).toMatch(/\/gitlab$/);
    const list = await repos(res.body.id);
    expect(list.status).toBe(200);
    expect(list.body.repositories.map((r) => r.clone_url).sort()).toEqual(g.projects.map((p) => p.http_url_to_repo).sort());
    expect(list.body.repositories[0].clone_url).toContain('/gitlab/');
    expect(selfManaged.gl.requests.filter((r) => r.path === '/api/v4/projects').length).toBeGreaterThan(0);
  });

  it('refreshes an expired access token first and keeps the rotated pair', async () => {
    const g = gitlabGrant(world, { expired: true });
    const refreshes = world.gl.stats.refreshes;
    const res = await register(g.body);
    expect(res.status).toBe(201);
    expect(world.gl.stats.refreshes).toBe(refreshes + 1);
    expect(world.gl.isAccessTokenLive(g.grant.accessToken)).toBe(false); // rotated away
    expect((await row(res.body.id)).accessTokenExpiresAt!.getTime()).toBeGreaterThan(Date.now() + 3600_000);
    expect((await repos(res.body.id)).status).toBe(200); // the stored pair works without another refresh
    expect(world.gl.stats.refreshes).toBe(refreshes + 1);
  });

  it('keeps the refreshed grant when GitLab blips right after the refresh', async () => {
    const g = gitlabGrant(world, { expired: true });
    world.gl.failNext(1, { status: 503, match: (_m, path) => path === '/api/v4/user' });
    const res = await register(g.body);
    expect(res.status).toBe(201);
    expect((await repos(res.body.id)).status).toBe(200);

    // A longer outage loses the rotated pair: the caller is told plainly to connect again.
    const lost = gitlabGrant(world, { expired: true });
    world.gl.failNext(10, { status: 503, match: (_m, path) => path === '/api/v4/user' });
    const failed = await register(lost.body);
    world.gl.clearFailures();
    expectError(failed, 502, 'reconnect_required', 'refresh_token');
    expect((failed.body as unknown as { error: { message: string } }).error.message).toMatch(/connect the account again/);
  });

  it('answers 422 invalid_credentials for a rejected access token and writes nothing', async () => {
    const owner = newOwner();
    const g = gitlabGrant(world);
    const res = await register({ ...g.body, access_token: 'not-a-real-token' }, owner);
    expectError(res, 422, 'invalid_credentials', 'access_token');
    expect(await h.core.db.platformIntegration.count({ where: { ownerId: owner } })).toBe(0);
  });

  it('answers 502 reconnect_required when the refresh token is dead, then accepts a new grant for the same user', async () => {
    const g = gitlabGrant(world, { expired: true });
    const ok = await register(g.body);
    expect(ok.status).toBe(201);
    // The caller's refresh token was used up by that registration: presenting it again is invalid_grant.
    expectError(await register(g.body, ok.owner), 502, 'reconnect_required', 'refresh_token');

    // Mark the integration broken, then reconnect the same GitLab user: same row, active again.
    await h.core.db.platformIntegration.update({ where: { id: ok.body.id }, data: { status: 'reconnect_required' } });
    const fresh = world.gl.grant(g.user.id, world.clientId);
    const again = await register(
      { access_token: fresh.accessToken, refresh_token: fresh.refreshToken, expires_at: fresh.expiresAt.toISOString() },
      ok.owner,
    );
    expect(again.status).toBe(201);
    expect(again.body).toMatchObject({ id: ok.body.id, status: 'active' });
  });

  it('answers 422 app_not_configured when no GitLab OAuth application is configured', async () => {
    const h2 = await startHarness({ env: { GITLAB_URL: world.gl.baseUrl }, worker: false });
    try {
      const g = gitlabGrant(world);
      const res = await h2.call('POST', '/api/integrations', { provider: 'gitlab', owner_id: newOwner(), ...g.body });
      expectError(res as never, 422, 'app_not_configured', 'provider');
    } finally {
      await h2.close();
    }
  });

  const valid = { access_token: 'a', refresh_token: 'r', expires_at: '2030-01-01T00:00:00Z' };
  it.each([
    [{ ...valid, base_url: 'not a url' }, 'base_url'],
    [{ ...valid, base_url: 'ftp://gitlab.example.com' }, 'base_url'],
    [{ ...valid, base_url: 'http://gitlab.example.com' }, 'base_url'],
    [{ ...valid, base_url: 'https://user:pw@gitlab.example.com' }, 'base_url'],
    [{ ...valid, base_url: 'https://gitlab.example.com/?x=1' }, 'base_url'],
    [{ ...valid, access_token: '' }, 'access_token'],
    [{ ...valid, refresh_token: undefined }, 'refresh_token'],
    [{ ...valid, expires_at: 'tomorrow' }, 'expires_at'],
    [{ ...valid, owner_id: 'me' }, 'owner_id'],
  ])('refuses %j with 400 naming %s', async (body, field) => {
    expectInvalid(await register(body), field, new RegExp(field));
  });
});

describe('GET /api/integrations/:id/repositories (gitlab)', () => {
  it('follows X-Next-Page past 200 (250 projects), leaves archived ones out, then serves the cache', async () => {
    const g = gitlabGrant(world, { projects: 0 });
    const added = world.gl.addProjects(
      g.user.id,
      Array.from({ length: 255 }, (_, i) => ({
        path: `proj-${String(i).padStart(3, '0')}`,
        archived: i >= 250,
        default_branch: i === 3 ? 'trunk' : undefined,
        visibility: i === 4 ? ('public' as const) : undefined,
      })),
    );
    const reg = await register(g.body);
    const pages = world.gl.stats.projectPages;
    const first = await repos(reg.body.id);
    expect(first.status).toBe(200);
    expect(first.body.repositories).toHaveLength(250);
    expect(world.gl.stats.projectPages - pages).toBe(3);
    expect(first.body.repositories.find((r) => r.id === added[3].id)).toEqual({
      id: added[3].id,
      name: 'proj-003',
      full_name: added[3].path_with_namespace,
      private: true,
      default_branch: 'trunk',
      clone_url: added[3].http_url_to_repo,
      platform: 'gitlab',
    });
    expect(first.body.repositories.find((r) => r.id === added[4].id)?.private).toBe(false);
    expect(first.body.synced_at).toMatch(ISO);

    expect((await repos(reg.body.id)).body).toEqual(first.body);
    expect(world.gl.stats.projectPages - pages).toBe(3);
    expect((await repos(reg.body.id, `?q=${g.user.username.toUpperCase()}-GROUP/PROJ-00`)).body.repositories).toHaveLength(10);
    expect((await repos(reg.body.id, '?refresh=1')).status).toBe(200);
    expect(world.gl.stats.projectPages - pages).toBe(6);
  });

  it('refreshes an expired stored token before listing', async () => {
    const g = gitlabGrant(world);
    const reg = await register(g.body);
    await h.core.db.platformIntegration.update({ where: { id: reg.body.id }, data: { accessTokenExpiresAt: new Date(Date.now() - 1000) } });
    const refreshes = world.gl.stats.refreshes;
    expect((await repos(reg.body.id)).status).toBe(200);
    expect(world.gl.stats.refreshes).toBe(refreshes + 1);
    expect(world.gl.isAccessTokenLive(g.grant.accessToken)).toBe(false);
  });

  it('turns 5xx and timeouts into 502 provider_unavailable and leaves the status alone', async () => {
    const g = gitlabGrant(world);
    const reg = await register(g.body);
    world.gl.failNext(1, { status: 500, match: (_m, path) => path === '/api/v4/projects' });
    expectError(await repos(reg.body.id), 502, 'provider_unavailable');
    world.gl.failNext(1, { status: 200, hangMs: 6_000, match: (_m, path) => path === '/api/v4/projects' });
    expectError(await repos(reg.body.id), 502, 'provider_unavailable');
    expect((await row(reg.body.id)).status).toBe('active');
    expect((await repos(reg.body.id)).body.repositories).toHaveLength(2);
  }, 30_000);

  it('answers reconnect_required and marks the integration when the refresh meets invalid_grant', async () => {
    const g = gitlabGrant(world);
    const reg = await register(g.body);
    world.gl.revokeGrant(g.user.id);
    await h.core.db.platformIntegration.update({ where: { id: reg.body.id }, data: { accessTokenExpiresAt: new Date(Date.now() - 1000) } });
    expectError(await repos(reg.body.id), 502, 'reconnect_required');
    const listed = await h.call<{ integrations: Integration[] }>('GET', `/api/integrations?owner_id=${reg.owner}`);
    expect(listed.body.integrations[0].status).toBe('reconnect_required');
    const calls = world.gl.requests.length;
    expectError(await repos(reg.body.id, '?refresh=true'), 502, 'reconnect_required');
    expect(world.gl.requests.length).toBe(calls); // a dead grant is not tried again
  });

  it('answers reconnect_required when the user revoked the app while the access token looked valid', async () => {
    const g = gitlabGrant(world);
    const reg = await register(g.body);
    world.gl.revokeGrant(g.user.id);
    expectError(await repos(reg.body.id), 502, 'reconnect_required');
    expect((await row(reg.body.id)).status).toBe('reconnect_required');
  });
});

describe('secrets', () => {
  it('shows no GitLab token in any response of this file (runs last)', () => {
    const secrets = [...world.gl.issuedTokens(), ...selfManaged.gl.issuedTokens()];
    expect(expectNoSecrets(responses, secrets)).toBeGreaterThan(30);
  });
});
