// The GitLab client against the fake GitLab over real HTTP: PKCE, rotation, pagination, failures.
import { createHash, randomBytes } from 'node:crypto';
import { createGitlabClient } from '../../lib/providers/gitlab';
import { ProviderError, type GitlabClient } from '../../lib/providers/types';
import { FakeGitLab } from '../fakes/gitlab';

const CLIENT = { clientId: 'rc-client-id', clientSecret: 'rc-client-secret' };
const REDIRECT_URI = 'http://127.0.0.1:9/integrations/gitlab/callback';

let fake: FakeGitLab;
let prefixed: FakeGitLab;
let client: GitlabClient;
const errors: ProviderError[] = [];

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

/** Drives the authorize page like a browser: open the URL, submit the form, read code and state off the redirect. */
async function authorize(target: FakeGitLab, codeChallenge: string, state = 'st-1'): Promise<{ code: string; state: string }> {
  const url = client.authorizeUrl({ baseUrl: target.baseUrl, state, codeChallenge, redirectUri: REDIRECT_URI });
  const page = await fetch(url);
  expect(page.status).toBe(200);
  const html = await page.text();
  expect(html).toContain('>Authorize</button>');
  const fields = new URLSearchParams(
    [...html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)].map((m) => [
      m[1],
      m[2].replace(/&#(\d+);/g, (_, c) => String.fromCharCode(Number(c))),
    ]),
  );
  fields.set('decision', 'allow');
  const action = new URL(html.match(/action="([^"]+)"/)![1], target.baseUrl);
  const res = await fetch(action, { method: 'POST', body: fields, redirect: 'manual' });
  expect(res.status).toBe(302);
  const location = new URL(res.headers.get('location')!);
  expect(location.origin + location.pathname).toBe(REDIRECT_URI);
  return { code: location.searchParams.get('code')!, state: location.searchParams.get('state')! };
}

function pkce(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

function newUser(target: FakeGitLab = fake) {
  const user = target.addUser({ username: `dev-${randomBytes(3).toString('hex')}` });
  return { user, grant: target.grant(user.id, CLIENT.clientId) };
}

beforeAll(async () => {
  [fake, prefixed] = await Promise.all([FakeGitLab.start(), FakeGitLab.start({ pathPrefix: '/gitlab' })]);
  for (const f of [fake, prefixed]) f.registerApplication({ ...CLIENT, redirectUri: REDIRECT_URI });
  client = createGitlabClient({ ...CLIENT, timeoutMs: 1000 });
});

afterEach(() => {
  fake.clearFailures();
  fake.accessTokenLifetimeSeconds = 7200;
});

afterAll(async () => {
  const secrets = [...fake.issuedTokens(), ...prefixed.issuedTokens(), ...fake.issuedCodes(), CLIENT.clientSecret];
  expect(errors.length).toBeGreaterThan(5);
  for (const err of errors) for (const secret of secrets) expect(err.message).not.toContain(secret);
  const log = JSON.stringify([fake.requests, prefixed.requests]);
  for (const secret of secrets) expect(log).not.toContain(secret);
  await Promise.all([fake.close(), prefixed.close()]);
});

describe('authorization code + PKCE', () => {
  it('exchanges a code for tokens bound to the signed-in user', async () => {
    const user = fake.addUser({ username: 'pkce-user' });
    fake.setAuthorizeUser(user.id);
    const { verifier, challenge } = pkce();
    const { code, state } = await authorize(fake, challenge, 'state-xyz');
    expect(state).toBe('state-xyz');
    const before = Date.now();
    const tokens = await client.exchangeCode({ baseUrl: fake.baseUrl, code, codeVerifier: verifier, redirectUri: REDIRECT_URI });

    expect(tokens.accessToken).toMatch(/^[0-9a-f]{64}$/);
    expect(tokens.refreshToken).toMatch(/^[0-9a-f]{64}$/);
    expect(tokens.expiresAt.getTime()).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000 + 7200_000);
    expect(tokens.expiresAt.getTime()).toBeLessThanOrEqual(Date.now() + 7200_000);
    expect(await client.getUser({ baseUrl: fake.baseUrl, accessToken: tokens.accessToken })).toEqual({
      ...user,
      name: user.username,
      avatarUrl: expect.stringContaining('/avatar'),
    });
    expect(fake.stats.codeExchanges).toBe(1);

    // Codes are single use.
    expect(
      (await providerError(client.exchangeCode({ baseUrl: fake.baseUrl, code, codeVerifier: verifier, redirectUri: REDIRECT_URI }))).code,
    ).toBe('reconnect_required');
  });

  it('refuses a wrong verifier or a different redirect URI with reconnect_required', async () => {
    const { challenge } = pkce();
    const { code } = await authorize(fake, challenge);
    const wrongVerifier = await providerError(
      client.exchangeCode({ baseUrl: fake.baseUrl, code, codeVerifier: pkce().verifier, redirectUri: REDIRECT_URI }),
    );
    expect([wrongVerifier.code, wrongVerifier.retryable, wrongVerifier.status]).toEqual(['reconnect_required', false, 400]);
    const wrongRedirect = await providerError(
      client.exchangeCode({ baseUrl: fake.baseUrl, code, codeVerifier: 'x', redirectUri: `${REDIRECT_URI}/other` }),
    );
    expect(wrongRedirect.code).toBe('reconnect_required');
  });

  it('the authorize page rejects unknown clients and unregistered redirect URIs', async () => {
    const url = new URL(
      client.authorizeUrl({ baseUrl: fake.baseUrl, state: 's', codeChallenge: 'c', redirectUri: 'http://evil.example/cb' }),
    );
    expect((await fetch(url)).status).toBe(400);
    url.searchParams.set('redirect_uri', REDIRECT_URI);
    url.searchParams.set('client_id', 'nope');
    expect((await fetch(url)).status).toBe(400);
  });
});

describe('refresh rotation', () => {
  it('rotates: the old access token dies at once and the old refresh token is refused', async () => {
    const { user, grant } = newUser();
    const next = await client.refresh({ baseUrl: fake.baseUrl, refreshToken: grant.refreshToken });

    expect(next.accessToken).not.toBe(grant.accessToken);
    expect(next.refreshToken).not.toBe(grant.refreshToken);
    expect(fake.isAccessTokenLive(grant.accessToken)).toBe(false);
    expect(fake.isAccessTokenLive(next.accessToken)).toBe(true);
    expect((await client.getUser({ baseUrl: fake.baseUrl, accessToken: next.accessToken })).id).toBe(user.id);
    expect((await providerError(client.getUser({ baseUrl: fake.baseUrl, accessToken: grant.accessToken }))).code).toBe(
      'invalid_credentials',
    );

    const before = fake.stats;
    const reused = await providerError(client.refresh({ baseUrl: fake.baseUrl, refreshToken: grant.refreshToken }));
    expect(reused.code).toBe('reconnect_required');
    expect(fake.stats.invalidGrants).toBe(before.invalidGrants + 1);
    expect(fake.stats.refreshes).toBe(before.refreshes);
    expect(fake.isAccessTokenLive(next.accessToken)).toBe(true);
  });

  it('two concurrent refreshes of one token: one wins, the other is reconnect_required', async () => {
    const { grant } = newUser();
    const results = await Promise.allSettled([1, 2].map(() => client.refresh({ baseUrl: fake.baseUrl, refreshToken: grant.refreshToken })));
    expect(results.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
    const rejected = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    expect((rejected.reason as ProviderError).code).toBe('reconnect_required');
    errors.push(rejected.reason as ProviderError);
  });

  it('a revoked grant is reconnect_required; a wrong client secret names the settings', async () => {
    const { user, grant } = newUser();
    const wrongSecret = createGitlabClient({ clientId: CLIENT.clientId, clientSecret: 'not-the-secret' });
    const badClient = await providerError(wrongSecret.refresh({ baseUrl: fake.baseUrl, refreshToken: grant.refreshToken }));
    expect([badClient.code, badClient.status]).toEqual(['provider_unavailable', 401]);
    expect(badClient.message).toContain('GITLAB_CLIENT_ID and GITLAB_CLIENT_SECRET');
    expect(fake.isAccessTokenLive(grant.accessToken)).toBe(true);

    fake.revokeGrant(user.id);
    expect((await providerError(client.refresh({ baseUrl: fake.baseUrl, refreshToken: grant.refreshToken }))).code).toBe(
      'reconnect_required',
    );
  });

  it('an unconfigured client says which variables to set', async () => {
    const unconfigured = createGitlabClient({});
    expect(unconfigured.isConfigured()).toBe(false);
    const err = await providerError(unconfigured.refresh({ baseUrl: fake.baseUrl, refreshToken: 'x' }));
    expect(err.message).toContain('GITLAB_CLIENT_ID');
  });
});

describe('API calls', () => {
  it('getUser: a rejected or expired token is invalid_credentials', async () => {
    expect((await providerError(client.getUser({ baseUrl: fake.baseUrl, accessToken: 'f'.repeat(64) }))).code).toBe('invalid_credentials');
    fake.accessTokenLifetimeSeconds = 1;
    const { grant } = newUser();
    await new Promise((r) => setTimeout(r, 1100));
    const expired = await providerError(client.getUser({ baseUrl: fake.baseUrl, accessToken: grant.accessToken }));
    expect([expired.code, expired.status]).toEqual(['invalid_credentials', 401]);
  });

  it('lists 250 projects across pages following X-Next-Page, archived ones excluded', async () => {
    const { user, grant } = newUser();
    const specs = Array.from({ length: 250 }, (_, i) => ({
      path: `svc-${String(i).padStart(3, '0')}`,
      name: `Service ${i}`,
      archived: i % 25 === 0,
      visibility: (i === 1 ? 'public' : 'internal') as 'public' | 'internal',
    }));
    const created = fake.addProjects(user.id, specs);
    const pagesBefore = fake.stats.projectPages;

    const projects = await client.listProjects({ baseUrl: fake.baseUrl, accessToken: grant.accessToken });

    expect(projects).toHaveLength(240);
    expect(fake.stats.projectPages - pagesBefore).toBe(3);
    const pages = fake.requests.filter((r) => r.path === '/api/v4/projects').slice(-3);
    expect(pages.map((r) => new URLSearchParams(r.query).get('page'))).toEqual(['1', '2', '3']);
    expect(pages.every((r) => r.query.includes('membership=true') && r.query.includes('per_page=100'))).toBe(true);
    expect(projects.some((p) => p.name === 'svc-000' || p.name === 'svc-025')).toBe(false);
    const svc1 = created.find((p) => p.path === 'svc-001')!;
    expect(projects.find((p) => p.id === svc1.id)).toEqual({
      id: svc1.id,
      name: 'svc-001',
      full_name: `${user.username}-group/svc-001`,
      private: false,
      default_branch: 'main',
      clone_url: svc1.http_url_to_repo,
      platform: 'gitlab',
    });
    expect(projects.find((p) => p.name === 'svc-002')?.private).toBe(true);
  });

  it('works against a self-managed instance under a path prefix', async () => {
    const user = prefixed.addUser({ username: 'sub-path-user' });
    prefixed.addProjects(user.id, 3);
    prefixed.setAuthorizeUser(user.id);
    const { verifier, challenge } = pkce();
    const url = new URL(
      client.authorizeUrl({ baseUrl: prefixed.baseUrl, state: 's', codeChallenge: challenge, redirectUri: REDIRECT_URI }),
    );
    expect(url.pathname).toBe('/gitlab/oauth/authorize');
    const { code } = await authorize(prefixed, challenge);
    const tokens = await client.exchangeCode({ baseUrl: `${prefixed.baseUrl}/`, code, codeVerifier: verifier, redirectUri: REDIRECT_URI });
    const refreshed = await client.refresh({ baseUrl: prefixed.baseUrl, refreshToken: tokens.refreshToken });
    expect(await client.getUser({ baseUrl: prefixed.baseUrl, accessToken: refreshed.accessToken })).toMatchObject(user);
    const projects = await client.listProjects({ baseUrl: prefixed.baseUrl, accessToken: refreshed.accessToken });
    expect(projects.map((p) => p.full_name)).toEqual([
      'sub-path-user-group/project-001',
      'sub-path-user-group/project-002',
      'sub-path-user-group/project-003',
    ]);
    expect(projects[0].clone_url).toBe(`${prefixed.baseUrl}/sub-path-user-group/project-001.git`);
    // Without the prefix there is no GitLab.
    expect((await fetch(`${new URL(prefixed.baseUrl).origin}/api/v4/user`)).status).toBe(404);
  });
});

describe('provider failures', () => {
  it('an outage makes every call provider_unavailable until it clears', async () => {
    const { grant } = newUser();
    fake.setOutage(503);
    for (const call of [
      client.refresh({ baseUrl: fake.baseUrl, refreshToken: grant.refreshToken }),
      client.getUser({ baseUrl: fake.baseUrl, accessToken: grant.accessToken }),
      client.listProjects({ baseUrl: fake.baseUrl, accessToken: grant.accessToken }),
      client.exchangeCode({ baseUrl: fake.baseUrl, code: 'c', codeVerifier: 'v', redirectUri: REDIRECT_URI }),
    ]) {
      const err = await providerError(call);
      expect([err.code, err.retryable, err.status]).toEqual(['provider_unavailable', true, 503]);
    }
    fake.setOutage(null);
    // The refresh token survived the outage: nothing was rotated.
    await expect(client.refresh({ baseUrl: fake.baseUrl, refreshToken: grant.refreshToken })).resolves.toEqual(
      expect.objectContaining({ accessToken: expect.any(String) }),
    );
  });

  it('429 carries retryAfterSeconds; a hang times out', async () => {
    const { grant } = newUser();
    fake.failNext(1, { status: 429, headers: { 'retry-after': '9' }, match: (_m, p) => p === '/oauth/token' });
    const limited = await providerError(client.refresh({ baseUrl: fake.baseUrl, refreshToken: grant.refreshToken }));
    expect([limited.code, limited.retryAfterSeconds]).toEqual(['provider_unavailable', 9]);

    fake.failNext(1, { status: 500, hangMs: 5000, match: (_m, p) => p === '/api/v4/user' });
    const started = Date.now();
    const hung = await providerError(client.getUser({ baseUrl: fake.baseUrl, accessToken: grant.accessToken }));
    expect([hung.code, hung.message]).toEqual(['provider_unavailable', expect.stringContaining('timed out after 1000 ms')]);
    expect(Date.now() - started).toBeLessThan(2500);
  });

  it('an unreachable GitLab is provider_unavailable', async () => {
    const down = await FakeGitLab.start();
    const baseUrl = down.baseUrl;
    await down.close();
    expect((await providerError(client.getUser({ baseUrl, accessToken: 'x' }))).code).toBe('provider_unavailable');
  });
});
