// GitHub App installations through the management API against a fake GitHub that checks the app
// JWTs for real: registration, the owner's list, and the cached repository list with its failures.
import { randomUUID } from 'node:crypto';
import { newOwner, startHarness, type Harness } from '../helpers/harness';
import { githubWorld, type GithubWorld } from '../helpers/scenario';
import { expectError, expectInvalid, expectNoSecrets, ISO, recordResponses } from '../helpers/api';

let h: Harness;
let world: GithubWorld;
let responses: string[];

beforeAll(async () => {
  world = await githubWorld();
  h = await startHarness({ env: world.env, worker: false });
  responses = recordResponses(h);
});
afterAll(async () => {
  await h?.close();
  await world?.gh.close();
});

interface Integration {
  id: string;
  status: string;
  status_reason: string | null;
  repository_count: number;
}
interface Repo {
  id: number;
  name: string;
  full_name: string;
  default_branch: string;
  clone_url: string;
}
interface RepoList {
  repositories: Repo[];
  synced_at: string | null;
}

const login = () => `acme-${randomUUID().slice(0, 8)}`;

async function install(
  opts: { repos?: Parameters<GithubWorld['gh']['addInstallation']>[0]['repositories']; lite?: boolean; account?: string } = {},
) {
  const app = opts.lite ? world.lite : world.standard;
  return world.gh.addInstallation({ appId: app.appId, account: { login: opts.account ?? login() }, repositories: opts.repos ?? 3 });
}

async function register(installationId: number, owner = newOwner(), appType: 'standard' | 'lite' = 'standard') {
  const res = await h.call<Integration>('POST', '/api/integrations', {
    provider: 'github',
    owner_id: owner,
    installation_id: installationId,
    app_type: appType,
  });
  return { ...res, owner };
}

const repos = (id: string, query = '') => h.call<RepoList>('GET', `/api/integrations/${id}/repositories${query}`);
const statusOf = async (id: string) => (await h.core.db.platformIntegration.findUniqueOrThrow({ where: { id } })).status;

describe('POST /api/integrations (github)', () => {
  it('registers a standard installation after reading it with the app JWT', async () => {
    const account = login();
    const inst = await install({ account });
    const reads = world.gh.stats.installationReads;
    const res = await register(inst.installationId);
    expect(res.status).toBe(201);
    expect(res.body).toEqual({
      id: expect.any(String),
      owner_id: res.owner,
      provider: 'github',
      status: 'active',
      status_reason: null,
      account,
      installation_id: inst.installationId,
      app_type: 'standard',
      base_url: null,
      repository_count: 0,
      repositories_synced_at: null,
      created_at: expect.stringMatching(ISO),
      updated_at: expect.stringMatching(ISO),
    });
    expect(world.gh.stats.installationReads).toBe(reads + 1);
    expect(world.gh.requests.filter((r) => r.path === `/app/installations/${inst.installationId}`).map((r) => r.status)).toEqual([200]);
  });

  it('registers a lite installation with the lite app (the standard app cannot see it)', async () => {
    const inst = await install({ lite: true });
    expectError(await register(inst.installationId, newOwner(), 'standard'), 502, 'installation_not_found', 'installation_id');
    const res = await register(inst.installationId, newOwner(), 'lite');
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ app_type: 'lite', status: 'active', installation_id: inst.installationId });
  });

  it('answers 502 installation_not_found for an unknown installation and writes nothing', async () => {
    const owner = newOwner();
    expectError(await register(987654321, owner), 502, 'installation_not_found', 'installation_id');
    expect(await h.core.db.platformIntegration.count({ where: { ownerId: owner } })).toBe(0);
  });

  it('registers a suspended installation with status suspended', async () => {
    const inst = await install();
    world.gh.suspend(inst.installationId);
    const res = await register(inst.installationId);
    expect(res.status).toBe(201);
    expect(res.body.status).toBe('suspended');
    expect(res.body.status_reason).toMatch(/suspended/);
  });

  it('answers 409 when another owner registered the installation, and keeps the first registration', async () => {
    const inst = await install();
    const first = await register(inst.installationId);
    const other = await register(inst.installationId);
    expectError(other, 409, 'integration_exists', 'installation_id');
    expect((await h.core.db.platformIntegration.findUniqueOrThrow({ where: { id: first.body.id } })).ownerId).toBe(first.owner);
  });

  it('updates on re-registration by the same owner (same id, fresh status)', async () => {
    const inst = await install();
    const first = await register(inst.installationId);
    world.gh.suspend(inst.installationId);
    const again = await register(inst.installationId, first.owner);
    expect(again.status).toBe(201);
    expect(again.body).toMatchObject({ id: first.body.id, status: 'suspended' });
    world.gh.unsuspend(inst.installationId);
    expect((await register(inst.installationId, first.owner)).body).toMatchObject({
      id: first.body.id,
      status: 'active',
      status_reason: null,
    });
    expect(await h.core.db.platformIntegration.count({ where: { ownerId: first.owner } })).toBe(1);
  });

  it('answers 422 app_not_configured when the app type has no GitHub App on this service', async () => {
    const { GITHUB_LITE_APP_ID: _id, GITHUB_LITE_APP_PRIVATE_KEY: _key, GITHUB_LITE_APP_SLUG: _slug, ...standardOnly } = world.env;
    const h2 = await startHarness({
      env: { ...standardOnly, GITHUB_LITE_APP_ID: undefined, GITHUB_LITE_APP_PRIVATE_KEY: undefined, GITHUB_LITE_APP_SLUG: undefined },
      worker: false,
    });
    try {
      const inst = await install({ lite: true });
      const res = await h2.call('POST', '/api/integrations', {
        provider: 'github',
        owner_id: newOwner(),
        installation_id: inst.installationId,
        app_type: 'lite',
      });
      expectError(res as never, 422, 'app_not_configured', 'app_type');
    } finally {
      await h2.close();
    }
  });

  it.each([
    [{ provider: 'bitbucket', owner_id: randomUUID(), installation_id: 1 }, 'provider'],
    [{ owner_id: randomUUID(), installation_id: 1 }, 'provider'],
    [{ provider: 'github', installation_id: 1 }, 'owner_id'],
    [{ provider: 'github', owner_id: randomUUID() }, 'installation_id'],
    [{ provider: 'github', owner_id: randomUUID(), installation_id: 'abc' }, 'installation_id'],
    [{ provider: 'github', owner_id: randomUUID(), installation_id: -4 }, 'installation_id'],
    [{ provider: 'github', owner_id: randomUUID(), installation_id: 1.5 }, 'installation_id'],
    [{ provider: 'github', owner_id: randomUUID(), installation_id: 1, app_type: 'admin' }, 'app_type'],
  ])('refuses %j with 400 naming %s', async (body, field) => {
    expectInvalid(await h.call('POST', '/api/integrations', body), field);
  });
});

describe('GET /api/integrations', () => {
  it("lists only the owner's integrations, each with its status", async () => {
    const owner = newOwner();
    const a = await install();
    const b = await install();
    world.gh.suspend(b.installationId);
    await register(a.installationId, owner);
    await register(b.installationId, owner);
    const res = await h.call<{ integrations: Array<{ installation_id: number; status: string; owner_id: string }> }>(
      'GET',
      `/api/integrations?owner_id=${owner}`,
    );
    expect(res.status).toBe(200);
    expect(res.body.integrations.map((i) => [i.installation_id, i.status, i.owner_id])).toEqual([
      [a.installationId, 'active', owner],
      [b.installationId, 'suspended', owner],
    ]);
    expect((await h.call('GET', `/api/integrations?owner_id=${newOwner()}`)).body).toEqual({ integrations: [] });
  });
});

describe('GET /api/integrations/:id/repositories (github)', () => {
  it('fetches every page on first use (250 repositories), leaves archived ones out, then serves the cache', async () => {
    const specs = Array.from({ length: 253 }, (_, i) => ({
      name: `svc-${String(i).padStart(3, '0')}`,
      archived: i >= 250,
      default_branch: i === 7 ? 'develop' : undefined,
    }));
    const inst = await install({ repos: specs });
    const reg = await register(inst.installationId);
    const pages = world.gh.stats.repositoryPages;

    const first = await repos(reg.body.id);
    expect(first.status).toBe(200);
    expect(first.body.repositories).toHaveLength(250);
    expect(first.body.synced_at).toMatch(ISO);
    expect(world.gh.stats.repositoryPages - pages).toBe(3); // per_page=100
    const seven = inst.repositories[7];
    expect(first.body.repositories.find((r) => r.id === seven.id)).toEqual({
      id: seven.id,
      name: 'svc-007',
      full_name: seven.full_name,
      private: true,
      default_branch: 'develop',
      clone_url: seven.clone_url,
      platform: 'github',
    });
    expect(first.body.repositories.some((r) => r.name >= 'svc-250')).toBe(false);

    const mints = world.gh.stats.mints;
    const cached = await repos(reg.body.id);
    expect(cached.body).toEqual(first.body);
    expect(world.gh.stats.repositoryPages - pages).toBe(3);
    expect(world.gh.stats.mints).toBe(mints);
    const listed = await h.call<{ integrations: Array<{ repository_count: number; repositories_synced_at: string }> }>(
      'GET',
      `/api/integrations?owner_id=${reg.owner}`,
    );
    expect(listed.body.integrations[0]).toMatchObject({ repository_count: 250, repositories_synced_at: first.body.synced_at });
  });

  it('refetches with refresh=true (a new repository appears) and filters case-insensitively with q', async () => {
    const account = `Acme-${randomUUID().slice(0, 6)}`;
    const inst = await install({ account, repos: [{ name: 'Web-App' }, { name: 'api' }, { name: 'docs' }] });
    const reg = await register(inst.installationId);
    const before = await repos(reg.body.id);
    world.gh.addRepository(inst.installationId, { name: 'WEBHOOKS' });
    expect((await repos(reg.body.id)).body.repositories).toHaveLength(3); // still the cache
    const pages = world.gh.stats.repositoryPages;
    const refreshed = await repos(reg.body.id, '?refresh=true');
    expect(world.gh.stats.repositoryPages).toBe(pages + 1);
    expect(refreshed.body.repositories.map((r) => r.name).sort()).toEqual(['WEBHOOKS', 'Web-App', 'api', 'docs']);
    expect(Date.parse(refreshed.body.synced_at!)).toBeGreaterThan(Date.parse(before.body.synced_at!));

    expect((await repos(reg.body.id, '?q=wEb')).body.repositories.map((r) => r.name).sort()).toEqual(['WEBHOOKS', 'Web-App']);
    expect((await repos(reg.body.id, `?q=${account.toLowerCase()}/d`)).body.repositories.map((r) => r.name)).toEqual(['docs']);
    expect((await repos(reg.body.id, '?q=nothing-like-it')).body).toEqual({ repositories: [], synced_at: refreshed.body.synced_at });
    expect(world.gh.stats.repositoryPages).toBe(pages + 1); // q reads the cache
  });

  it('turns 5xx, rate limits and timeouts into 502 provider_unavailable, never a 500 or an empty list', async () => {
    const inst = await install();
    const reg = await register(inst.installationId);
    world.gh.failNext(1, { status: 502 });
    expectError(await repos(reg.body.id), 502, 'provider_unavailable');
    expect((await h.core.db.platformIntegration.findUniqueOrThrow({ where: { id: reg.body.id } })).repositoriesSyncedAt).toBeNull();

    world.gh.failNext(1, { status: 429, headers: { 'retry-after': '7' } });
    const limited = await repos(reg.body.id);
    expectError(limited, 502, 'provider_unavailable');
    expect(limited.headers.get('retry-after')).toBe('7');

    world.gh.failNext(1, { status: 200, hangMs: 6_000 }); // past PROVIDER_TIMEOUT_SECONDS=3 of the tests
    const started = Date.now();
    expectError(await repos(reg.body.id), 502, 'provider_unavailable');
    expect(Date.now() - started).toBeLessThan(5_500);

    expect(await statusOf(reg.body.id)).toBe('active');
    expect((await repos(reg.body.id)).body.repositories).toHaveLength(3); // recovers
  }, 30_000);

  it('answers installation_suspended and marks the integration suspended; a later success reactivates it', async () => {
    const inst = await install();
    const reg = await register(inst.installationId);
    expect((await repos(reg.body.id)).status).toBe(200);
    world.gh.suspend(inst.installationId);
    expectError(await repos(reg.body.id, '?refresh=true'), 502, 'installation_suspended');
    const listed = await h.call<{ integrations: Integration[] }>('GET', `/api/integrations?owner_id=${reg.owner}`);
    expect(listed.body.integrations[0]).toMatchObject({ status: 'suspended', status_reason: expect.stringMatching(/suspended/) });
    world.gh.unsuspend(inst.installationId);
    expect((await repos(reg.body.id, '?refresh=true')).status).toBe(200);
    expect(await statusOf(reg.body.id)).toBe('active');
  });

  it('answers installation_not_found for an uninstalled app and marks the integration deleted', async () => {
    const inst = await install();
    const reg = await register(inst.installationId);
    world.gh.remove(inst.installationId);
    expectError(await repos(reg.body.id), 502, 'installation_not_found');
    expect(await statusOf(reg.body.id)).toBe('deleted');
    const calls = world.gh.requests.length;
    expectError(await repos(reg.body.id, '?refresh=true'), 502, 'installation_not_found');
    expect(world.gh.requests.length).toBe(calls); // deleted is final: GitHub is not asked again
  });

  it('does not mark an integration deleted on one 404 while listing when GitHub still has the installation', async () => {
    const inst = await install();
    const reg = await register(inst.installationId);
    // The listing token's mint meets a passing 404 (GitHub's replication lag); the installation reads fine.
    world.gh.failNext(1, { status: 404, match: (m, p) => m === 'POST' && p === `/app/installations/${inst.installationId}/access_tokens` });
    expectError(await repos(reg.body.id, '?refresh=true'), 502, 'provider_unavailable');
    expect(await statusOf(reg.body.id)).toBe('active');
    expect((await repos(reg.body.id, '?refresh=true')).body.repositories).toHaveLength(3);
  });

  it('answers 404 for an unknown integration and 400 for bad parameters', async () => {
    expectError(await repos(randomUUID()), 404, 'not_found', 'integration_id');
    expectInvalid(await h.call('GET', '/api/integrations/xyz/repositories'), 'integration_id');
    const inst = await install();
    const reg = await register(inst.installationId);
    expectInvalid(await repos(reg.body.id, '?refresh=yes'), 'refresh');
    expectInvalid(await repos(reg.body.id, `?q=${'a'.repeat(201)}`), 'q');
  });
});

describe('secrets', () => {
  it('shows no installation token or app key in any response of this file (runs last)', () => {
    const secrets = [...world.gh.issuedTokens(), world.standard.privateKeyPem.split('\n')[1], world.lite.privateKeyPem.split('\n')[1]];
    expect(world.gh.issuedTokens().length).toBeGreaterThan(5);
    expect(expectNoSecrets(responses, secrets)).toBeGreaterThan(30);
  });
});
