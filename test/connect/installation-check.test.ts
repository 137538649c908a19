// An owner registers a GitHub App installation only when GitHub lists it for them: through the
// code GitHub sends with the install, or their kept "Sign in with GitHub" token, or refused with
// installation_not_yours and nothing written. Connect states finish once, in the session that
// started them. Admin stays trusted.
import { randomUUID } from 'node:crypto';
import { sha256Hex } from '../../lib/secrets';
import type { FakeUser } from '../fakes/github-oauth';
import { expectError } from '../helpers/api';
import type { Harness } from '../helpers/harness';
import { formOf, HttpBrowser, type Hop } from '../helpers/http-browser';
import { dashboardWorld, startDashboard, type DashboardWorld } from '../dashboard/dashboard-world';

let world: DashboardWorld;
let h: Harness;

beforeAll(async () => {
  world = await dashboardWorld({ liteOAuth: true });
  h = await startDashboard(world, { worker: false });
});
afterAll(async () => {
  await h?.close();
  await world?.close();
});

interface Owner {
  browser: HttpBrowser;
  ownerId: string;
}

/** A browser that started "Sign in with GitHub" and authorized the app as `user`; `back` is where GitHub sends it (not followed). */
async function authorizedAs(user: FakeUser): Promise<{ browser: HttpBrowser; back: Hop }> {
  const browser = new HttpBrowser();
  world.gh.setWebUser(user.id);
  const start = await browser.request(`${h.url}/login/github`);
  const consent = await browser.request(start.location!);
  const { action, fields } = formOf(consent.text);
  return { browser, back: await browser.request(new URL(action, world.gh.webUrl), { form: fields }) };
}

/** A browser signed in with GitHub as `user`. */
async function signedInWithGithub(user: FakeUser): Promise<Owner> {
  const { browser, back } = await authorizedAs(user);
  expect((await browser.request(back.location!)).status).toBe(303);
  return { browser, ownerId: (await ownerOf(browser))! };
}

/** A browser signed in by a sign-in link (no GitHub account known). */
async function signedInByLink(): Promise<Owner> {
  const browser = new HttpBrowser();
  const ownerId = randomUUID();
  const link = await h.call<{ url: string }>('POST', `/api/owners/${ownerId}/sign-in-links`);
  expect((await browser.request(link.body.url)).status).toBe(303);
  return { browser, ownerId };
}

async function ownerOf(browser: HttpBrowser): Promise<string | null> {
  const session = await h.core.db.session.findUnique({ where: { tokenHash: sha256Hex(browser.cookie(h.url, 'rc_session') ?? '') } });
  return session?.ownerId ?? null;
}

/** Our install route → the app's install page → Install as `installer` → where GitHub sends the browser (not followed). */
async function install(owner: Owner, installer: FakeUser, account: string, appType = 'standard'): Promise<Hop> {
  world.gh.setWebUser(installer.id);
  const start = await owner.browser.request(`${h.url}/integrations/github/install?app_type=${appType}`);
  expect(start.status).toBe(302);
  const state = start.location!.searchParams.get('state')!;
  const installed = await owner.browser.request(`${start.location!.origin}${start.location!.pathname}`, { form: { state, account } });
  expect(installed.status).toBe(302);
  return installed;
}

const integrationsOf = async (ownerId: string) =>
  (
    await h.call<{ integrations: Array<{ installation_id: number | null; account: string }> }>(
      'GET',
      `/api/integrations?owner_id=${ownerId}`,
    )
  ).body.integrations;

const someoneElsesInstallation = () =>
  world.gh.addInstallation({ appId: world.standard.appId, account: { login: `other-${randomUUID().slice(0, 6)}` }, repositories: 1 })
    .installationId;

it('registers an installation the installer can see, with the code GitHub sends to the callback URL', async () => {
  const user = world.gh.addUser({ login: 'inst-ann' });
  const owner = await signedInWithGithub(user);
  const back = await install(owner, user, 'ann-org');
  expect(back.location!.pathname).toBe('/login/github/callback');
  expect(back.location!.searchParams.get('code')).toBeTruthy();
  const done = await owner.browser.request(back.location!);
  expect([done.status, done.location?.pathname]).toEqual([303, '/integrations']);
  expect(await integrationsOf(owner.ownerId)).toMatchObject([
    { account: 'ann-org', installation_id: Number(back.location!.searchParams.get('installation_id')) },
  ]);
});

it('refuses a spoofed installation_id (installation_not_yours) and writes nothing', async () => {
  const user = world.gh.addUser({ login: 'inst-ben' });
  const owner = await signedInByLink();
  const back = await install(owner, user, 'ben-org');
  const theirs = someoneElsesInstallation();
  const spoofed = new URL(back.location!);
  spoofed.searchParams.set('installation_id', String(theirs));
  const identities = await h.core.db.ownerIdentity.count();
  const res = await owner.browser.request(spoofed);
  expect([res.status, res.text]).toEqual([403, expect.stringContaining('<code>installation_not_yours</code>')]);
  expect(await h.core.db.platformIntegration.count({ where: { githubInstallationId: BigInt(theirs) } })).toBe(0);
  expect(await integrationsOf(owner.ownerId)).toEqual([]);
  expect(await h.core.db.ownerIdentity.count()).toBe(identities); // the installer was not linked either
});

it('checks a setup URL without a code with the token kept from Sign in with GitHub, and refuses owners GitHub does not know', async () => {
  const user = world.gh.addUser({ login: 'inst-cat' });
  const owner = await signedInWithGithub(user);
  const { installationId: visible } = world.gh.addInstallation({
    appId: world.standard.appId,
    account: { login: 'cat-org' },
    repositories: 1,
    users: [user.id],
  });
  const setup = async (o: Owner, installationId: number) => {
    const start = await o.browser.request(`${h.url}/integrations/github/install?app_type=standard`);
    const state = start.location!.searchParams.get('state')!;
    return o.browser.request(
      `${h.url}/integrations/github/setup?installation_id=${installationId}&setup_action=install&state=${encodeURIComponent(state)}`,
    );
  };
  expect((await setup(owner, visible)).status).toBe(303);
  const refused = await setup(owner, someoneElsesInstallation());
  expect([refused.status, refused.text]).toEqual([403, expect.stringContaining('does not list installation')]);

  const stranger = await signedInByLink();
  const unknown = await setup(stranger, visible);
  expect([unknown.status, unknown.text]).toEqual([403, expect.stringContaining('not known here')]);
  expect(await integrationsOf(stranger.ownerId)).toEqual([]);
});

it('refuses a code from a GitHub account that belongs to another owner', async () => {
  const theirs = world.gh.addUser({ login: 'inst-dan' });
  await signedInWithGithub(theirs);
  const owner = await signedInByLink();
  const back = await install(owner, theirs, 'dan-org');
  const res = await owner.browser.request(back.location!);
  expect([res.status, res.text]).toEqual([403, expect.stringContaining('belongs to another owner')]);
  expect(await integrationsOf(owner.ownerId)).toEqual([]);
});

it('finds the installation on a later page of GET /user/installations', async () => {
  const user = world.gh.addUser({ login: 'inst-eve' });
  const owner = await signedInWithGithub(user);
  const ids = Array.from(
    { length: 130 },
    (_, i) =>
      world.gh.addInstallation({ appId: world.standard.appId, account: { login: `eve-${i}` }, repositories: 1, users: [user.id] })
        .installationId,
  );
  const { token } = (await h.call<{ token: string }>('POST', `/api/owners/${owner.ownerId}/tokens`, { name: 'eve' })).body;
  const pages = world.gh.oauth.stats.installationPages;
  const res = await h.call(
    'POST',
    '/api/integrations',
    { provider: 'github', installation_id: ids[129] },
    { authorization: `Bearer ${token}` },
  );
  expect(res.status).toBe(201);
  expect(world.gh.oauth.stats.installationPages - pages).toBe(2);
});

it('holds POST /api/integrations by an owner to the same rule, and trusts admin', async () => {
  const user = world.gh.addUser({ login: 'inst-fay' });
  const owner = await signedInWithGithub(user);
  const { token } = (await h.call<{ token: string }>('POST', `/api/owners/${owner.ownerId}/tokens`, { name: 'fay' })).body;
  const as = { authorization: `Bearer ${token}` };
  const { installationId: mine } = world.gh.addInstallation({
    appId: world.standard.appId,
    account: { login: 'fay-org' },
    repositories: 1,
    users: [user.id],
  });
  const theirs = someoneElsesInstallation();
  expect((await h.call('POST', '/api/integrations', { provider: 'github', installation_id: mine }, as)).status).toBe(201);
  expectError(
    await h.call('POST', '/api/integrations', { provider: 'github', installation_id: theirs }, as),
    403,
    'installation_not_yours',
    'installation_id',
  );
  expect(await h.core.db.platformIntegration.count({ where: { githubInstallationId: BigInt(theirs) } })).toBe(0);
  // GitHub failing to list the person's installations is a typed 502, not a 500, and writes nothing.
  const { installationId: later } = world.gh.addInstallation({
    appId: world.standard.appId,
    account: { login: 'fay-org-2' },
    repositories: 1,
    users: [user.id],
  });
  world.gh.failNext(1, { status: 503, match: (_m: string, path: string) => path.startsWith('/user/installations') });
  const failed = await h.call('POST', '/api/integrations', { provider: 'github', installation_id: later }, as);
  expectError(failed, 502, 'provider_unavailable');
  expect(JSON.stringify(failed.body)).not.toMatch(/FST_|serializ/i);
  expect(await h.core.db.platformIntegration.count({ where: { githubInstallationId: BigInt(later) } })).toBe(0);
  // So is an answer cut off mid-body (a connection reset), which is not "not yours" either.
  world.gh.failNext(1, { status: 200, cut: 10, match: (_m: string, path: string) => path.startsWith('/user/installations') });
  expectError(await h.call('POST', '/api/integrations', { provider: 'github', installation_id: later }, as), 502, 'provider_unavailable');
  expect(await h.core.db.platformIntegration.count({ where: { githubInstallationId: BigInt(later) } })).toBe(0);
  expect((await h.call('POST', '/api/integrations', { provider: 'github', owner_id: owner.ownerId, installation_id: theirs })).status).toBe(
    201,
  );
});

it("checks lite installs with the lite app's own OAuth client", async () => {
  const user = world.gh.addUser({ login: 'inst-gus' });
  const owner = await signedInByLink();
  const back = await install(owner, user, 'gus-org', 'lite');
  expect(back.location!.pathname).toBe('/integrations/github/setup');
  const done = await owner.browser.request(back.location!);
  expect(done.status).toBe(303);
  expect(await integrationsOf(owner.ownerId)).toMatchObject([{ account: 'gus-org' }]);
});

it('finishes a connect state once, and only in the session that started it', async () => {
  const user = world.gh.addUser({ login: 'inst-hal' });
  const owner = await signedInWithGithub(user);
  const back = await install(owner, user, 'hal-org');
  // Another signed-in owner carrying the URL: refused before anything is checked or written.
  const other = await signedInByLink();
  const stolen = await other.browser.request(back.location!);
  expect([stolen.status, stolen.text]).toEqual([400, expect.stringContaining('another browser session')]);
  expect((await owner.browser.request(back.location!)).status).toBe(303);
  const replay = await owner.browser.request(back.location!);
  expect([replay.status, replay.text]).toEqual([400, expect.stringMatching(/invalid_state[^]*already used/)]);
});

it('ignores a code on an update return without a state: it could be anyone’s, and would link their GitHub account to the caller', async () => {
  const ivy = world.gh.addUser({ login: 'inst-ivy' });
  const jon = world.gh.addUser({ login: 'inst-jon' });
  const victim = await signedInWithGithub(ivy);
  const { installationId } = world.gh.addInstallation({
    appId: world.standard.appId,
    account: { login: 'ivy-org' },
    repositories: 1,
    users: [ivy.id, jon.id],
  });
  const start = await victim.browser.request(`${h.url}/integrations/github/install?app_type=standard`);
  const state = start.location!.searchParams.get('state')!;
  const setup = `${h.url}/integrations/github/setup?installation_id=${installationId}`;
  expect((await victim.browser.request(`${setup}&setup_action=install&state=${encodeURIComponent(state)}`)).status).toBe(303);

  // Jon, who can see the installation too, authorizes the app as himself and keeps the code GitHub
  // sends back instead of following it; then gets Ivy's browser to the update return with it.
  const { browser: attacker, back } = await authorizedAs(jon);
  const code = back.location!.searchParams.get('code')!;
  world.gh.addRepository(installationId, { name: 'added-later' });
  const exchanges = world.gh.oauth.stats.codeExchanges;
  const res = await victim.browser.request(`${setup}&setup_action=update&code=${code}`);

  // The installation is refreshed, and the code is not used.
  expect([res.status, res.location?.pathname]).toEqual([303, '/integrations']);
  const listed = await h.call<{ integrations: unknown[] }>('GET', `/api/integrations?owner_id=${victim.ownerId}`);
  expect(listed.body.integrations).toMatchObject([{ account: 'ivy-org', installation_id: installationId, repository_count: 2 }]);
  expect(world.gh.oauth.stats.codeExchanges).toBe(exchanges);
  expect(await h.core.db.ownerIdentity.count({ where: { providerUserId: BigInt(jon.id) } })).toBe(0);
  // Jon signing in with GitHub gets an owner of his own, not Ivy's.
  const signedIn = await attacker.request(back.location!);
  expect(signedIn.status).toBe(303);
  const jonsOwner = await ownerOf(attacker);
  expect(jonsOwner).not.toBeNull();
  expect(jonsOwner).not.toBe(victim.ownerId);
});
