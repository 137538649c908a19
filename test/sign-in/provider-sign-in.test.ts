// "Sign in with GitHub / GitLab" over HTTP against the fakes, every hop checked: the owner created on
// first sign-in and found again after, accounts linked to a signed-in owner and refused for another,
// states bound to the browser that started them and used once, GitHub user tokens kept encrypted
// and refreshed once under concurrency, GitLab asked for read_user alone.
import { identityTokenContext } from '../../lib/secret-contexts';
import { sha256Hex } from '../../lib/secrets';
import type { FakeUser } from '../fakes/github-oauth';
import type { Harness } from '../helpers/harness';
import { formOf, HttpBrowser, type Hop } from '../helpers/http-browser';
import { dashboardWorld, startDashboard, type DashboardWorld } from '../dashboard/dashboard-world';

let world: DashboardWorld;
let h: Harness;

beforeAll(async () => {
  world = await dashboardWorld();
  // The production default (10 s): a provider call may outlast the 5 s Prisma gives a transaction by default.
  h = await startDashboard(world, { worker: false, env: { PROVIDER_TIMEOUT_SECONDS: '10' } });
});
afterAll(async () => {
  await h?.close();
  await world?.close();
});

/** Our /login/github → GitHub's authorize page → Authorize → back at our callback (not yet followed). */
async function toGithubCallback(browser: HttpBrowser, user: FakeUser, next?: string): Promise<Hop> {
  world.gh.setWebUser(user.id);
  const start = await browser.request(`${h.url}/login/github${next ? `?next=${encodeURIComponent(next)}` : ''}`);
  expect(start.status).toBe(302);
  expect(`${start.location!.origin}${start.location!.pathname}`).toBe(`${world.gh.webUrl}/login/oauth/authorize`);
  expect(Object.fromEntries(start.location!.searchParams)).toMatchObject({
    client_id: world.standard.clientId,
    redirect_uri: `${world.publicUrl}/login/github/callback`,
  });
  const consent = await browser.request(start.location!);
  expect(consent.text).toContain(`Signed in as ${user.login}`);
  const { action, fields } = formOf(consent.text);
  const back = await browser.request(new URL(action, world.gh.webUrl), { form: fields });
  expect(back.status).toBe(302);
  expect(`${back.location!.origin}${back.location!.pathname}`).toBe(`${world.publicUrl}/login/github/callback`);
  return back;
}

async function githubSignIn(browser: HttpBrowser, user: FakeUser, next?: string): Promise<Hop> {
  return browser.request((await toGithubCallback(browser, user, next)).location!);
}

const sessionOwner = async (browser: HttpBrowser) => {
  const cookie = browser.cookie(h.url, 'rc_session');
  if (!cookie) return null;
  const row = await h.core.db.session.findFirst({ where: { tokenHash: sha256Hex(cookie) } });
  return row?.ownerId ?? null;
};

/** A person signed in with GitHub whose kept user token has just expired: its next use refreshes it. */
async function signedInWithExpiredToken(login: string) {
  const user = world.gh.addUser({ login });
  const browser = new HttpBrowser();
  await githubSignIn(browser, user);
  const ownerId = (await sessionOwner(browser))!;
  const before = await h.core.db.ownerIdentity.findFirstOrThrow({ where: { ownerId } });
  await h.core.db.ownerIdentity.update({ where: { id: before.id }, data: { userTokenExpiresAt: new Date(Date.now() - 1000) } });
  return { ownerId, before };
}

describe('Sign in with GitHub', () => {
  it('creates the owner on first sign-in, signs the same account into the same owner after, and goes to next', async () => {
    const user = world.gh.addUser({ login: 'octo-ann', name: 'Ann Octo' });
    const browser = new HttpBrowser();
    const done = await githubSignIn(browser, user, '/integrations');
    expect([done.status, done.location?.pathname]).toEqual([303, '/integrations']);
    expect(browser.cookie(h.url, 'rc_login')).toBeUndefined(); // the sign-in cookie is spent
    const ownerId = await sessionOwner(browser);
    expect(ownerId).toEqual(expect.any(String));
    const owner = await h.core.db.owner.findUniqueOrThrow({ where: { id: ownerId! }, include: { identities: true } });
    expect(owner).toMatchObject({ displayName: 'Ann Octo', avatarUrl: user.avatar_url });
    const [identity] = owner.identities;
    expect(identity).toMatchObject({ provider: 'github', origin: world.gh.webUrl, providerUserId: BigInt(user.id), login: 'octo-ann' });
    // The user-to-server pair is kept encrypted, bound to its row, with GitHub's expiries.
    const access = h.core.secrets.decrypt(identity.userTokenEnc!, identityTokenContext(identity.id, 'access'));
    expect(access).toMatch(/^ghu_/);
    expect(identity.userTokenEnc).not.toContain(access);
    expect(identity.userTokenExpiresAt!.getTime() - Date.now()).toBeGreaterThan(7.9 * 3600_000);
    expect(identity.refreshTokenExpiresAt!.getTime() - Date.now()).toBeGreaterThan(180 * 24 * 3600_000);

    const again = new HttpBrowser();
    expect((await githubSignIn(again, user)).status).toBe(303);
    expect(await sessionOwner(again)).toBe(ownerId);
    expect(await h.core.db.ownerIdentity.count({ where: { providerUserId: BigInt(user.id) } })).toBe(1);
  });

  it('finishes only in the browser that started it, and only once', async () => {
    const user = world.gh.addUser({ login: 'octo-ben' });
    const started = new HttpBrowser();
    const callback = (await toGithubCallback(started, user)).location!;
    // Another browser (no sign-in cookie) carrying the same callback URL signs nobody in.
    const elsewhere = new HttpBrowser();
    const stolen = await elsewhere.request(callback);
    expect([stolen.status, stolen.text]).toEqual([400, expect.stringContaining('another browser session')]);
    expect(elsewhere.cookie(h.url, 'rc_session')).toBeUndefined();
    // The browser that started it still can; a replay of the same callback with its sign-in cookie then cannot.
    const loginCookie = started.cookieHeader(h.url);
    expect((await started.request(callback)).status).toBe(303);
    const replay = await new HttpBrowser().request(callback, { headers: { cookie: loginCookie } });
    expect([replay.status, replay.text]).toEqual([400, expect.stringMatching(/invalid_state[^]*already used/)]);
  });

  it("links GitHub to a signed-in owner, and refuses an account that is another owner's", async () => {
    const linked = world.gh.addUser({ login: 'octo-cat' });
    const first = new HttpBrowser();
    await githubSignIn(first, linked);
    const catOwner = await sessionOwner(first);

    // An owner signed in by a link signs in with a new GitHub account: it becomes theirs.
    const fresh = world.gh.addUser({ login: 'octo-dan', name: 'Dan' });
    const browser = new HttpBrowser();
    const link = await h.call<{ url: string }>('POST', `/api/owners/${crypto.randomUUID()}/sign-in-links`);
    await browser.request(link.body.url);
    const linkOwner = await sessionOwner(browser);
    expect((await githubSignIn(browser, fresh)).status).toBe(303);
    expect(await sessionOwner(browser)).toBe(linkOwner);
    expect(await h.core.db.owner.findUniqueOrThrow({ where: { id: linkOwner! } })).toMatchObject({ displayName: 'Dan' });

    // The same owner then tries octo-cat, which is another owner's: refused, still signed in as themself.
    const refused = await githubSignIn(browser, linked);
    expect([refused.status, refused.text]).toEqual([409, expect.stringContaining('account_linked_elsewhere')]);
    expect(await sessionOwner(browser)).toBe(linkOwner);
    expect((await h.core.db.ownerIdentity.findFirstOrThrow({ where: { providerUserId: BigInt(linked.id) } })).ownerId).toBe(catOwner);
  });

  it('refreshes an expired user token once under concurrency, rotating the refresh token', async () => {
    const { ownerId, before } = await signedInWithExpiredToken('octo-eve');
    const oldAccess = h.core.secrets.decrypt(before.userTokenEnc!, identityTokenContext(before.id, 'access'));
    const refreshes = world.gh.oauth.stats.refreshes;
    const tokens = await Promise.all([1, 2, 3].map(() => h.api.services.identities.githubUserToken(ownerId)));
    expect(world.gh.oauth.stats.refreshes).toBe(refreshes + 1);
    expect(new Set(tokens).size).toBe(1);
    expect(tokens[0]).not.toBe(oldAccess);
    expect(tokens[0]).toMatch(/^ghu_/);
    const after = await h.core.db.ownerIdentity.findUniqueOrThrow({ where: { id: before.id } });
    expect(after.userTokenExpiresAt!.getTime()).toBeGreaterThan(Date.now() + 7 * 3600_000);
    expect(after.refreshTokenEnc).not.toBe(before.refreshTokenEnc);
    // The old refresh token died with its use (GitHub rotates them).
    const oldRefresh = h.core.secrets.decrypt(before.refreshTokenEnc!, identityTokenContext(before.id, 'refresh'));
    const reuse = await fetch(`${world.gh.webUrl}/login/oauth/access_token`, {
      method: 'POST',
      headers: { accept: 'application/json', 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        client_id: world.standard.clientId,
        client_secret: world.standard.clientSecret,
        grant_type: 'refresh_token',
        refresh_token: oldRefresh,
      }),
    });
    expect(await reuse.json()).toMatchObject({ error: 'bad_refresh_token' });
  });

  it('keeps the rotated pair when GitHub answers the refresh slowly (past the 5 s Prisma gives a transaction by default)', async () => {
    const { ownerId, before } = await signedInWithExpiredToken('octo-slow');
    // GitHub rotates the pair at once and its answer arrives 6 s later.
    world.gh.failNext(1, {
      status: 200,
      late: true,
      hangMs: 6000,
      match: (m, path) => m === 'POST' && path === '/login/oauth/access_token',
    });
    const refreshes = world.gh.oauth.stats.refreshes;
    const token = await h.api.services.identities.githubUserToken(ownerId);
    expect(token).toMatch(/^ghu_/);
    const after = await h.core.db.ownerIdentity.findUniqueOrThrow({ where: { id: before.id } });
    expect(after.refreshTokenEnc).not.toBe(before.refreshTokenEnc);
    expect(h.core.secrets.decrypt(after.userTokenEnc!, identityTokenContext(after.id, 'access'))).toBe(token);
    // The saved pair is the live one: the next call needs no refresh.
    expect(await h.api.services.identities.githubUserToken(ownerId)).toBe(token);
    expect(world.gh.oauth.stats.refreshes).toBe(refreshes + 1);
  });

  it('checks the client secret at the token endpoint, and shows a denied authorization as a clear page', async () => {
    const wrong = await fetch(`${world.gh.webUrl}/login/oauth/access_token`, {
      method: 'POST',
      headers: { accept: 'application/json', 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ client_id: world.standard.clientId, client_secret: 'nope', code: 'x' }),
    });
    expect([wrong.status, (await wrong.json()).error]).toEqual([200, 'incorrect_client_credentials']);
    const denied = await new HttpBrowser().request(`${h.url}/login/github/callback?error=access_denied&state=x`);
    expect([denied.status, denied.text]).toEqual([400, expect.stringContaining('<code>access_denied</code>')]);
  });
});

describe('Sign in with GitLab', () => {
  it('asks for read_user alone with PKCE on its own redirect URI, and keeps no GitLab token', async () => {
    const user = world.gl.addUser({ username: 'gl-fay', name: 'Fay Lab' });
    world.gl.addProjects(user.id, 1);
    world.gl.setAuthorizeUser(user.id);
    const browser = new HttpBrowser();
    const start = await browser.request(`${h.url}/login/gitlab?next=/integrations`);
    expect(Object.fromEntries(start.location!.searchParams)).toMatchObject({
      client_id: 'rc-gitlab-client',
      redirect_uri: `${world.publicUrl}/login/gitlab/callback`,
      scope: 'read_user',
      code_challenge: expect.stringMatching(/^[\w-]{43}$/),
      code_challenge_method: 'S256',
    });
    const consent = await browser.request(start.location!);
    const { fields } = formOf(consent.text);
    const back = await browser.request(`${world.gl.baseUrl}/oauth/authorize`, { form: { ...fields, decision: 'allow' } });
    const done = await browser.request(back.location!);
    expect([done.status, done.location?.pathname]).toEqual([303, '/integrations']);
    const ownerId = (await sessionOwner(browser))!;
    const owner = await h.core.db.owner.findUniqueOrThrow({ where: { id: ownerId }, include: { identities: true } });
    expect(owner.displayName).toBe('Fay Lab');
    expect(owner.identities).toMatchObject([
      { provider: 'gitlab', origin: world.gl.baseUrl, login: 'gl-fay', userTokenEnc: null, refreshTokenEnc: null },
    ]);
  });

  it('gives a read_user token no project access (the fake checks scopes as GitLab does)', async () => {
    const user = world.gl.addUser({ username: 'gl-gus' });
    const token = world.gl.oauth.issue(user.id, 'rc-gitlab-client', Date.now(), 'read_user').accessToken;
    const me = await fetch(`${world.gl.baseUrl}/api/v4/user`, { headers: { authorization: `Bearer ${token}` } });
    expect(me.status).toBe(200);
    const projects = await fetch(`${world.gl.baseUrl}/api/v4/projects?membership=true`, { headers: { authorization: `Bearer ${token}` } });
    expect([projects.status, (await projects.json()).error]).toEqual([403, 'insufficient_scope']);
  });
});

describe('the login page', () => {
  it('offers GitHub, GitLab and the admin token form, each only when configured', async () => {
    const page = await new HttpBrowser().request(`${h.url}/login?next=/rigs/x`);
    expect(page.text).toContain('href="/login/github?next=%2Frigs%2Fx">Sign in with GitHub</a>');
    expect(page.text).toContain('href="/login/gitlab?next=%2Frigs%2Fx">Sign in with GitLab</a>');
    expect(page.text).toContain('<label for="token">Admin token</label>');
  });
});
