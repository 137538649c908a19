// The GitHub client against the fake GitHub over real HTTP (GHES layout: API under /api/v3).
import { generateKeyPairSync } from 'node:crypto';
import { createGithubClient } from '../../lib/providers/github';
import { ProviderError, type GithubClient } from '../../lib/providers/types';
import { FakeGitHub, type FakeGithubApp } from '../fakes/github';

let fake: FakeGitHub;
let standard: FakeGithubApp;
let lite: FakeGithubApp;
let client: GithubClient;
const errors: ProviderError[] = [];

/** Awaits a rejection, checks it is a ProviderError and keeps it for the "no token in messages" scan. */
async function providerError(promise: Promise<unknown>): Promise<ProviderError> {
  const err = await promise.then(
    () => {
      throw new Error('expected a ProviderError, the call succeeded');
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ProviderError);
  errors.push(err as ProviderError);
  return err as ProviderError;
}

function install(app: FakeGithubApp, repositories: Parameters<FakeGitHub['addInstallation']>[0]['repositories'] = 3) {
  return fake.addInstallation({ appId: app.appId, account: { login: `acme-${Math.random().toString(36).slice(2, 8)}` }, repositories });
}

beforeAll(async () => {
  fake = await FakeGitHub.start();
  standard = await fake.createApp({ slug: 'rc-standard', setupUrl: 'http://127.0.0.1:9/integrations/github/setup' });
  lite = await fake.createApp({ slug: 'rc-lite', permissions: { contents: 'read', metadata: 'read' } });
  client = createGithubClient({
    apiUrl: fake.apiUrl,
    apps: { standard: fake.appConfig(standard), lite: fake.appConfig(lite, 'lite') },
    timeoutMs: 1000,
  });
});

afterEach(() => {
  fake.clearFailures();
  fake.newTokenUnauthorizedMs = 0;
  fake.tokenLifetimeSeconds = 3600;
});

afterAll(async () => {
  // Checked last, over every error any test provoked.
  const tokens = fake.issuedTokens();
  expect(tokens.length).toBeGreaterThan(0);
  for (const err of errors) {
    for (const token of tokens) expect(err.message).not.toContain(token.slice(4, 40));
    expect(err.message).not.toMatch(/eyJ[\w-]+\./);
    expect(err.message).not.toContain('PRIVATE KEY');
  }
  await fake.close();
});

describe('minting', () => {
  it('mints a long token scoped to the requested repository with the standard permissions', async () => {
    const { installationId, repositories } = install(standard);
    const [target, other] = repositories;
    const before = Date.now();
    const minted = await client.mintInstallationToken('standard', installationId, [target.id]);

    expect(minted.token).toMatch(/^ghs_[A-Za-z0-9_-]+$/);
    expect(minted.token.length).toBeGreaterThanOrEqual(500);
    expect(minted.token.length).toBeLessThanOrEqual(600);
    expect(minted.permissions).toEqual({ contents: 'write', metadata: 'read' });
    expect(minted.expiresAt.getTime()).toBeGreaterThan(before + 3590_000);
    expect(fake.accessTokenRequests.at(-1)).toEqual({
      installationId,
      body: { repository_ids: [target.id], permissions: { contents: 'write', metadata: 'read' } },
      repositoryIds: [target.id],
      permissions: { contents: 'write', metadata: 'read' },
      status: 201,
    });
    expect(fake.isTokenLive(minted.token, target.full_name, 'write')).toBe(true);
    expect(fake.isTokenLive(minted.token, other.full_name)).toBe(false);
  });

  it('mints read-only tokens for the lite app', async () => {
    const { installationId, repositories } = install(lite);
    const minted = await client.mintInstallationToken('lite', installationId, [repositories[0].id]);
    expect(fake.accessTokenRequests.at(-1)?.permissions).toEqual({ contents: 'read', metadata: 'read' });
    expect(fake.isTokenLive(minted.token, repositories[0].full_name, 'read')).toBe(true);
    expect(fake.isTokenLive(minted.token, repositories[0].full_name, 'write')).toBe(false);
  });

  it('never caches: each mint, sequential or concurrent, is its own POST and its own token', async () => {
    const { installationId, repositories } = install(standard);
    const ids = [repositories[0].id];
    const first = await client.mintInstallationToken('standard', installationId, ids);
    const second = await client.mintInstallationToken('standard', installationId, ids);
    const [third, fourth] = await Promise.all([
      client.mintInstallationToken('standard', installationId, ids),
      client.mintInstallationToken('standard', installationId, ids),
    ]);
    expect(new Set([first.token, second.token, third.token, fourth.token]).size).toBe(4);
    expect(fake.stats.mintsFor(installationId)).toBe(4);
    expect(fake.accessTokenRequests.filter((r) => r.installationId === installationId)).toHaveLength(4);
  });

  it('refuses to mint an unscoped token by accident', async () => {
    const { installationId } = install(standard);
    await expect(client.mintInstallationToken('standard', installationId, [])).rejects.toThrow('at least one repository');
    expect(fake.stats.mintsFor(installationId)).toBe(0);
  });

  it('reads installations, including suspension', async () => {
    const { installationId } = install(standard);
    const inst = await client.getInstallation('standard', installationId);
    expect(inst).toEqual({
      id: installationId,
      account: expect.objectContaining({ login: expect.stringMatching(/^acme-/), type: 'Organization' }),
      suspendedAt: null,
      repositorySelection: 'selected',
    });
    fake.suspend(installationId);
    expect((await client.getInstallation('standard', installationId)).suspendedAt).toEqual(expect.any(String));
    expect(client.hasApp('standard')).toBe(true);
    expect(createGithubClient({ apiUrl: fake.apiUrl, apps: {} }).hasApp('lite')).toBe(false);
  });
});

describe('verification (replication lag)', () => {
  it('rides out a 2 s unauthorized window after the mint', async () => {
    const { installationId, repositories } = install(standard);
    fake.newTokenUnauthorizedMs = 2000;
    const { token } = await client.mintInstallationToken('standard', installationId, [repositories[0].id]);
    const before = fake.stats.verifications;
    const started = Date.now();
    await client.verifyInstallationToken(token);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1900);
    expect(fake.stats.verifications - before).toBeGreaterThan(3);
  });

  it('gives up with provider_unavailable when the window lasts past ~6 s', async () => {
    const { installationId, repositories } = install(standard);
    fake.newTokenUnauthorizedMs = 20_000;
    const { token } = await client.mintInstallationToken('standard', installationId, [repositories[0].id]);
    const started = Date.now();
    const err = await providerError(client.verifyInstallationToken(token));
    const elapsed = Date.now() - started;
    expect([err.code, err.status]).toEqual(['provider_unavailable', 401]);
    expect(elapsed).toBeGreaterThanOrEqual(5500);
    expect(elapsed).toBeLessThan(8000);
  }, 15_000);

  it('fails fast with installation_suspended for a suspended installation', async () => {
    const { installationId, repositories } = install(standard);
    const { token } = await client.mintInstallationToken('standard', installationId, [repositories[0].id]);
    fake.suspend(installationId);
    const started = Date.now();
    expect((await providerError(client.verifyInstallationToken(token))).code).toBe('installation_suspended');
    expect(Date.now() - started).toBeLessThan(1000);
  });
});

describe('error mapping', () => {
  it('404: unknown, uninstalled or other-app installations are installation_not_found', async () => {
    const { installationId, repositories } = install(standard);
    fake.remove(installationId);
    expect((await providerError(client.mintInstallationToken('standard', installationId, [repositories[0].id]))).code).toBe(
      'installation_not_found',
    );
    const liteInstall = install(lite);
    expect((await providerError(client.getInstallation('standard', liteInstall.installationId))).code).toBe('installation_not_found');
    expect((await providerError(client.listInstallationRepositories('standard', 999))).code).toBe('installation_not_found');
  });

  it('403 suspended → installation_suspended', async () => {
    const { installationId, repositories } = install(standard);
    fake.suspend(installationId);
    const err = await providerError(client.mintInstallationToken('standard', installationId, [repositories[0].id]));
    expect([err.code, err.retryable, err.status]).toEqual(['installation_suspended', false, 403]);
  });

  it('422 → repository_not_accessible, for foreign repositories and for permissions the app lacks', async () => {
    const { installationId } = install(standard);
    const foreign = install(standard).repositories[0];
    expect((await providerError(client.mintInstallationToken('standard', installationId, [foreign.id]))).code).toBe(
      'repository_not_accessible',
    );
    // The lite app configured as "standard": it asks for contents:write, which the app does not have.
    const misconfigured = createGithubClient({ apiUrl: fake.apiUrl, apps: { standard: fake.appConfig(lite) } });
    const liteInstall = install(lite);
    const err = await providerError(
      misconfigured.mintInstallationToken('standard', liteInstall.installationId, [liteInstall.repositories[0].id]),
    );
    expect([err.code, err.status]).toEqual(['repository_not_accessible', 422]);
  });

  it('5xx and outages → provider_unavailable (retryable)', async () => {
    const { installationId, repositories } = install(standard);
    fake.failNext(1, { status: 502, match: (m, p) => m === 'POST' && p.endsWith('/access_tokens') });
    const err = await providerError(client.mintInstallationToken('standard', installationId, [repositories[0].id]));
    expect([err.code, err.retryable, err.status]).toEqual(['provider_unavailable', true, 502]);
    fake.setOutage(503);
    expect((await providerError(client.getInstallation('standard', installationId))).status).toBe(503);
    fake.setOutage(null);
    expect((await client.getInstallation('standard', installationId)).id).toBe(installationId);
  });

  it('429 and secondary rate limits → provider_unavailable with retryAfterSeconds', async () => {
    const { installationId, repositories } = install(standard);
    fake.failNext(1, { status: 429, headers: { 'retry-after': '7' } });
    const limited = await providerError(client.mintInstallationToken('standard', installationId, [repositories[0].id]));
    expect([limited.code, limited.retryAfterSeconds]).toEqual(['provider_unavailable', 7]);
    const reset = Math.floor(Date.now() / 1000) + 90;
    fake.failNext(1, {
      status: 403,
      body: { message: 'You have exceeded a secondary rate limit.' },
      headers: { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': String(reset) },
    });
    const secondary = await providerError(client.getInstallation('standard', installationId));
    expect(secondary.code).toBe('provider_unavailable');
    expect(secondary.retryAfterSeconds).toBeGreaterThanOrEqual(88);
    expect(secondary.retryAfterSeconds).toBeLessThanOrEqual(91);
  });

  it('a hanging GitHub times out → provider_unavailable', async () => {
    const { installationId, repositories } = install(standard);
    fake.failNext(1, { status: 500, hangMs: 5000 });
    const started = Date.now();
    const err = await providerError(client.mintInstallationToken('standard', installationId, [repositories[0].id]));
    expect(err.code).toBe('provider_unavailable');
    expect(err.message).toContain('timed out');
    expect(Date.now() - started).toBeLessThan(2500);
  });

  it('a JWT signed with the wrong key is rejected → provider_unavailable naming the app settings', async () => {
    const { installationId, repositories } = install(standard);
    const wrongKey = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
    const wrong = createGithubClient({ apiUrl: fake.apiUrl, apps: { standard: { ...fake.appConfig(standard), privateKey: wrongKey } } });
    const err = await providerError(wrong.mintInstallationToken('standard', installationId, [repositories[0].id]));
    expect([err.code, err.status]).toEqual(['provider_unavailable', 401]);
    expect(err.message).toContain('GITHUB_APP_ID / GITHUB_APP_PRIVATE_KEY');
    expect(fake.stats.mintsFor(installationId)).toBe(0);
  });

  it('an unreachable GitHub → provider_unavailable', async () => {
    const down = await FakeGitHub.start();
    const apiUrl = down.apiUrl;
    await down.close();
    const err = await providerError(
      createGithubClient({ apiUrl, apps: { standard: fake.appConfig(standard) } }).getInstallation('standard', 1),
    );
    expect([err.code, err.retryable]).toEqual(['provider_unavailable', true]);
  });
});

describe('listing repositories', () => {
  it('follows Link past 200 repositories, leaves archived ones out and revokes its token', async () => {
    const specs = Array.from({ length: 250 }, (_, i) => ({ name: `svc-${String(i).padStart(3, '0')}`, archived: i % 25 === 0 }));
    const { installationId, repositories } = install(standard, specs);
    fake.newTokenUnauthorizedMs = 300; // the listing token is brand new too
    const pagesBefore = fake.stats.repositoryPages;
    const revokesBefore = fake.stats.revokes;

    const repos = await client.listInstallationRepositories('standard', installationId);

    expect(repos).toHaveLength(240);
    expect(repos.some((r) => r.name === 'svc-000' || r.name === 'svc-025')).toBe(false);
    const sample = repositories.find((r) => r.name === 'svc-001')!;
    expect(repos.find((r) => r.id === sample.id)).toEqual({
      id: sample.id,
      name: 'svc-001',
      full_name: sample.full_name,
      private: true,
      default_branch: 'main',
      clone_url: `${fake.webUrl}/${sample.full_name}.git`,
      platform: 'github',
    });
    const pages = fake.requests.filter(
      (r) => r.path === '/installation/repositories' && r.status === 200 && r.query.includes('per_page=100'),
    );
    expect(pages.map((r) => r.query)).toEqual(['per_page=100', 'per_page=100&page=2', 'per_page=100&page=3']);
    expect(fake.stats.repositoryPages - pagesBefore).toBeGreaterThanOrEqual(3);
    const listingMint = fake.accessTokenRequests.filter((r) => r.installationId === installationId);
    expect(listingMint).toEqual([
      { installationId, body: { permissions: { metadata: 'read' } }, repositoryIds: null, permissions: { metadata: 'read' }, status: 201 },
    ]);
    expect(fake.stats.revokes - revokesBefore).toBe(1);
    expect(fake.isTokenLive(fake.issuedTokens().at(-1)!)).toBe(false);
  });
});

describe('answers cut off mid-body (a connection reset after the status line)', () => {
  it('a mint, an installation read and a repository page each fail as provider_unavailable, never as partial data', async () => {
    const { installationId, repositories } = install(standard, 250);
    const isMint = (m: string, p: string) => m === 'POST' && p.endsWith('/access_tokens');
    fake.failNext(1, { status: 201, cut: 20, match: isMint });
    const mint = await providerError(client.mintInstallationToken('standard', installationId, [repositories[0].id]));
    expect([mint.code, mint.retryable]).toEqual(['provider_unavailable', true]);

    fake.failNext(1, { status: 200, cut: 30, match: (m, p) => m === 'GET' && p === `/app/installations/${installationId}` });
    expect((await providerError(client.getInstallation('standard', installationId))).code).toBe('provider_unavailable');

    // Page 2 of 3 stops after 5 kB: the listing fails rather than answer 200 of 250 repositories.
    let pages = 0;
    fake.failNext(1, { status: 200, cut: 5000, match: (m, p) => m === 'GET' && p === '/installation/repositories' && ++pages === 2 });
    expect((await providerError(client.listInstallationRepositories('standard', installationId))).code).toBe('provider_unavailable');
    // Whole answers work again.
    expect(await client.listInstallationRepositories('standard', installationId)).toHaveLength(250);
  });
});

describe('revocation and install URLs', () => {
  it('revokes, then reports an already-dead token as already_invalid', async () => {
    const { installationId, repositories } = install(standard);
    const { token } = await client.mintInstallationToken('standard', installationId, [repositories[0].id]);
    expect(fake.isTokenLive(token)).toBe(true);
    await expect(client.revokeInstallationToken(token)).resolves.toBe('revoked');
    expect(fake.isTokenLive(token)).toBe(false);
    await expect(client.revokeInstallationToken(token)).resolves.toBe('already_invalid');
  });

  it('treats an expired token as already_invalid', async () => {
    const { installationId, repositories } = install(standard);
    fake.tokenLifetimeSeconds = 1;
    const { token } = await client.mintInstallationToken('standard', installationId, [repositories[0].id]);
    await new Promise((r) => setTimeout(r, 1100));
    expect(fake.isTokenLive(token)).toBe(false);
    await expect(client.revokeInstallationToken(token)).resolves.toBe('already_invalid');
  });

  it('builds the GHES install URL from the API base alone, and the fake page installs and redirects', async () => {
    const url = client.installUrl('standard', 'signed.state');
    expect(url).toBe(`${fake.webUrl}/github-apps/rc-standard/installations/new?state=signed.state`);
    expect(
      createGithubClient({ apiUrl: 'https://api.github.com', apps: { lite: fake.appConfig(lite, 'lite') } }).installUrl('lite', 's'),
    ).toBe('https://github.com/apps/rc-lite/installations/new?state=s');

    const page = await fetch(url);
    const html = await page.text();
    expect(html).toContain('>Install</button>');
    fake.setPendingInstallRepositories('rc-standard', 2);
    const submit = await fetch(new URL(html.match(/action="([^"]+)"/)![1], fake.webUrl), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ state: 'signed.state', account: 'web-org' }),
      redirect: 'manual',
    });
    expect(submit.status).toBe(302);
    const location = new URL(submit.headers.get('location')!);
    expect(location.origin + location.pathname).toBe('http://127.0.0.1:9/integrations/github/setup');
    expect(location.searchParams.get('setup_action')).toBe('install');
    expect(location.searchParams.get('state')).toBe('signed.state');
    const installationId = Number(location.searchParams.get('installation_id'));
    const repos = await client.listInstallationRepositories('standard', installationId);
    expect(repos.map((r) => r.full_name)).toEqual(['web-org/repo-001', 'web-org/repo-002']);
  });
});
