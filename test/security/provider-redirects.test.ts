// Item 1 of the security review: POST /api/integrations took any base_url, and an expired
// `expires_at` made the service refresh there at once, posting client_id, GITLAB_CLIENT_SECRET and
// the refresh token; fetch would also follow a 307/308 from a real GitLab with that body. Here a
// trap listener on another loopback port stands for the attacker: it must never see a request.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pushToContainer } from '../../activities/container-push';
import { normaliseBaseUrl } from '../../lib/base-url';
import { createGithubClient } from '../../lib/providers/github';
import { createGitlabClient } from '../../lib/providers/gitlab';
import { ProviderError } from '../../lib/providers/types';
import { expectError, expectInvalid, gitlabGrant, gitlabWorld, type GitlabWorld } from '../helpers/api';
import { newOwner, startHarness, type Harness } from '../helpers/harness';
import { githubWorld, type GithubWorld } from '../helpers/scenario';

interface Caught {
  method: string;
  url: string;
  body: string;
  authorization: boolean;
}

/** A loopback listener that records whatever reaches it: the attacker's server. */
async function trap(): Promise<{ url: string; caught: Caught[]; close(): Promise<void> }> {
  const caught: Caught[] = [];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      caught.push({ method: req.method ?? '', url: req.url ?? '', body, authorization: req.headers.authorization !== undefined });
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"access_token":"x","refresh_token":"y","expires_in":7200}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    caught,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

let attacker: Awaited<ReturnType<typeof trap>>;
let world: GitlabWorld;
let other: GitlabWorld;
let gh: GithubWorld;
let h: Harness;

beforeAll(async () => {
  attacker = await trap();
  world = await gitlabWorld();
  other = await gitlabWorld({ pathPrefix: '/gitlab' });
  other.gl.registerApplication({ clientId: world.clientId, clientSecret: 'rc-secret', redirectUri: 'http://127.0.0.1/cb' });
  gh = await githubWorld();
  // The second instance is allowed, spelled differently from how integrations name it.
  const spelled = other.gl.baseUrl.replace('http://', 'HTTP://').replace('/gitlab', '/gitlab/');
  h = await startHarness({ env: { ...world.env, ...gh.env, GITLAB_ALLOWED_URLS: ` ${spelled} ,` }, worker: false });
});
afterEach(() => {
  expect(attacker.caught).toEqual([]); // nothing, ever, in any test
  world.gl.clearFailures();
  gh.gh.clearFailures();
});
afterAll(async () => {
  await h?.close();
  await Promise.all([world?.gl.close(), other?.gl.close(), gh?.gh.close(), attacker?.close()]);
});

const register = (body: Record<string, unknown>) =>
  h.call<{ id: string; base_url: string; error?: { message: string } }>('POST', '/api/integrations', {
    provider: 'gitlab',
    owner_id: newOwner(),
    ...body,
  });

describe('GitLab base_url', () => {
  it('refuses a base_url that is not GITLAB_URL or in GITLAB_ALLOWED_URLS, before any call', async () => {
    const g = gitlabGrant(world, { expired: true });
    for (const base_url of [attacker.url, `${attacker.url}/gitlab`, 'https://gitlab.attacker.example', `${world.gl.baseUrl}/other`]) {
      const res = await register({ ...g.body, base_url });
      expectInvalid(res, 'base_url', /GITLAB_URL or one of GITLAB_ALLOWED_URLS/);
    }
    expect(world.gl.stats.refreshes).toBe(0);
  });

  it('accepts the allowed instances however they are spelled, and stores the canonical form', async () => {
    const g = gitlabGrant(other);
    const res = await register({ ...g.body, base_url: `${other.gl.baseUrl.replace('http://', 'Http://')}//` });
    expect(res.status).toBe(201);
    expect(res.body.base_url).toBe(other.gl.baseUrl);
    const byDefault = await register(gitlabGrant(world).body);
    expect(byDefault.status).toBe(201);
    expect(byDefault.body.base_url).toBe(world.gl.baseUrl);
    // What "the same URL" means: scheme and host case, default port, trailing slashes.
    expect(normaliseBaseUrl('HTTPS://GitLab.Example.com:443/Group/')).toBe('https://gitlab.example.com/Group');
    expect(normaliseBaseUrl('http://gitlab.example.com:80')).toBe('http://gitlab.example.com');
    expect(normaliseBaseUrl('https://gitlab.example.com:8443/')).toBe('https://gitlab.example.com:8443');
  });

  it('never refreshes a stored grant against an instance that is no longer allowed', async () => {
    const client = createGitlabClient({ clientId: 'rc-client', clientSecret: 'rc-secret', allowedBaseUrls: [world.gl.baseUrl] });
    const err = await client.refresh({ baseUrl: attacker.url, refreshToken: 'refresh-token-value' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProviderError);
    expect((err as ProviderError).code).toBe('reconnect_required');
    expect((err as ProviderError).message).toMatch(/GITLAB_ALLOWED_URLS/);
  });
});

describe('redirects are never followed', () => {
  it.each([307, 308])('GitLab answering %i to the token endpoint gets the secret nowhere', async (status) => {
    const g = gitlabGrant(world, { expired: true });
    world.gl.failNext(1, { status, headers: { location: `${attacker.url}/oauth/token` }, match: (_m, path) => path === '/oauth/token' });
    const res = await register(g.body);
    expectError(res, 502, 'provider_unavailable', 'access_token');
    expect(res.body.error!.message).toContain(`answered ${status}, a redirect to ${attacker.url}, which is not followed`);
    expect(res.body.error!.message).not.toContain(g.grant.refreshToken);
  });

  it('GitLab redirecting an API call with the access token gets nothing followed', async () => {
    const g = gitlabGrant(world);
    world.gl.failNext(1, {
      status: 302,
      headers: { location: `${attacker.url}/api/v4/user` },
      match: (_m, path) => path === '/api/v4/user',
    });
    expectError(await register(g.body), 502, 'provider_unavailable', 'access_token');
  });

  it('GitHub redirecting the app JWT or a mint gets nothing followed', async () => {
    const inst = gh.gh.addInstallation({ appId: gh.standard.appId, account: { login: 'acme-redirect' }, repositories: 1 });
    gh.gh.failNext(1, {
      status: 307,
      headers: { location: `${attacker.url}/app` },
      match: (_m, path) => path.startsWith('/app/installations/'),
    });
    const res = await h.call<{ error: { message: string } }>('POST', '/api/integrations', {
      provider: 'github',
      owner_id: newOwner(),
      installation_id: inst.installationId,
    });
    expectError(res, 502, 'provider_unavailable', 'installation_id');
    expect(res.body.error.message).toMatch(/307, a redirect .* not followed/);

    const client = createGithubClient({ apiUrl: gh.gh.apiUrl, apps: { standard: gh.gh.appConfig(gh.standard) } });
    gh.gh.failNext(1, { status: 308, headers: { location: `${attacker.url}/mint` }, match: (_m, path) => path.endsWith('/access_tokens') });
    const err = await client.mintInstallationToken('standard', inst.installationId, [inst.repositories[0].id]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProviderError);
    expect(err).toMatchObject({ code: 'provider_unavailable', status: 308 });
  });

  it('a container answering a redirect to a push is refused, as its own outcome, and the token goes nowhere', async () => {
    const container = createServer((_req, res) => res.writeHead(307, { location: `${attacker.url}/git-token` }).end());
    await new Promise<void>((r) => container.listen(0, '127.0.0.1', r));
    try {
      const outcome = await pushToContainer({
        containerUrl: `http://127.0.0.1:${(container.address() as AddressInfo).port}`,
        containerToken: 'rcc_container-token',
        body: { rig_id: 'r', dispatch_id: 'd', token: 'ghs_pushed-token', expires_at: null, username: 'x-access-token', generation: 1 },
        timeoutMs: 2000,
      });
      expect(outcome).toEqual({ outcome: 'refused', detail: expect.stringMatching(/307, a redirect, which is not followed/) });
    } finally {
      await new Promise<void>((r) => container.close(() => r()));
    }
  });
});
