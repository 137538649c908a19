// Two owners side by side in a real (headless) browser: Ann signs in with GitHub, Bob with a
// one-time sign-in link. Each connects, creates a town and a rig and dispatches, and neither sees
// the other's towns or integrations; a spoofed installation_id and a replayed state are refused.
// Screenshots go to test/artifacts/.
import type { Browser, Page } from 'playwright-core';
import { FakeContainerHost } from '../fakes/container';
import type { FakeUser } from '../fakes/github-oauth';
import { eventually, type Harness } from '../helpers/harness';
import { launchBrowser, newPage, shot, signIn } from './browser-kit';
import { dashboardWorld, startDashboard, type DashboardWorld } from './dashboard-world';

let world: DashboardWorld;
let h: Harness;
let browser: Browser;
let containers: FakeContainerHost;
let ann: Page;
let bob: Page;
let annGithub: FakeUser;
let bobGithub: FakeUser;
const errors: string[] = [];
const ids: Record<string, string> = {};
let annInstallation: number;
let annCallback: string;

beforeAll(async () => {
  world = await dashboardWorld();
  containers = await FakeContainerHost.start();
  [h, browser] = await Promise.all([startDashboard(world), launchBrowser()]);
  annGithub = world.gh.addUser({ login: 'ann-octo', name: 'Ann Octo' });
  bobGithub = world.gh.addUser({ login: 'bob-gh' });
  world.gh.setPendingInstallRepositories('rc-standard', [{ name: 'harbor-web' }, { name: 'harbor-api' }]);
  const gl = world.gl.addUser({ username: 'bob-lab', name: 'Bob Lab' });
  world.gl.addProjects(gl.id, [{ path: 'lighthouse' }, { path: 'beacon', visibility: 'public' }]);
  world.gl.setAuthorizeUser(gl.id);
  ann = await newPage(browser, errors, world.publicUrl);
  bob = await newPage(browser, errors, world.publicUrl);
});

afterAll(async () => {
  await browser?.close();
  await h?.close();
  await containers?.close();
  await world?.close();
});

afterEach(() => {
  expect(errors).toEqual([]);
});

const base = () => world.publicUrl;
const townNames = (page: Page) => page.locator('[data-towns] a').allTextContents();

it('signs Ann in with GitHub: login page → Authorize on GitHub → her (empty) towns, her name in the header', async () => {
  world.gh.setWebUser(annGithub.id);
  await ann.goto(`${base()}/`);
  await ann.getByRole('link', { name: 'Sign in with GitHub' }).waitFor();
  await shot(ann, 'tenants-login');
  await ann.getByRole('link', { name: 'Sign in with GitHub' }).click();
  await ann.waitForURL((url) => url.href.startsWith(`${world.gh.webUrl}/login/oauth/authorize`));
  await ann.getByRole('button', { name: 'Authorize' }).click();
  await ann.getByRole('heading', { name: 'Your towns' }).waitFor();
  expect(await ann.locator('.account .name').textContent()).toBe('Ann Octo');
  expect(await ann.locator('.account .avatar').textContent()).toBe('AO');
  ids.ann = (await ann.locator('[data-viewer]').getAttribute('data-viewer'))!;
});

it('signs Bob in with a one-time link made by admin; the link does not work twice', async () => {
  const bobId = crypto.randomUUID();
  const link = await h.call<{ url: string }>('POST', `/api/owners/${bobId}/sign-in-links`);
  await bob.goto(link.body.url);
  await bob.getByRole('heading', { name: 'Your towns' }).waitFor();
  expect(await bob.locator('[data-viewer]').getAttribute('data-viewer')).toBe(bobId);
  ids.bob = bobId;
  const other = await newPage(browser, [], world.publicUrl);
  await other.goto(link.body.url);
  await other.getByText('This sign-in link was already used or has expired').waitFor();
  await shot(other, 'tenants-link-used');
  await other.context().close();
});

it('lets each create a town that only they see', async () => {
  for (const [page, name] of [
    [ann, 'Anchorage'],
    [bob, 'Breakwater'],
  ] as const) {
    await page.goto(`${base()}/`);
    await page.getByLabel('Name').fill(name);
    await page.getByRole('button', { name: 'Create town' }).click();
    await page.waitForURL((url) => url.pathname.startsWith('/towns/'));
    await page.getByRole('heading', { name, exact: true }).waitFor();
    ids[name] = page.url().split('/towns/')[1];
  }
  await ann.goto(`${base()}/`);
  await bob.goto(`${base()}/`);
  expect(await townNames(ann)).toEqual(['Anchorage']);
  expect(await townNames(bob)).toEqual(['Breakwater']);
  await shot(ann, 'tenants-ann-home');
  await shot(bob, 'tenants-bob-home');
});

it('connects Ann to GitHub: Install as ann-octo → GitHub sends her back with a code → checked and registered', async () => {
  ann.on('request', (req) => {
    if (req.url().includes('/login/github/callback?') && req.url().includes('installation_id=')) annCallback = req.url();
  });
  world.gh.setWebUser(annGithub.id);
  await ann.goto(`${base()}/integrations`);
  await ann.getByRole('link', { name: 'Connect GitHub (read/write)' }).click();
  await ann.getByText('Signed in as ann-octo').waitFor();
  await ann.getByLabel('Account').fill('ann-org');
  await ann.getByRole('button', { name: 'Install' }).click();
  await ann.getByRole('status').filter({ hasText: 'Connected GitHub account ann-org' }).waitFor();
  annInstallation = Number(new URL(annCallback).searchParams.get('installation_id'));
  await shot(ann, 'tenants-ann-integrations');
});

it('connects Bob to GitLab, and shows each only their own integrations', async () => {
  await bob.goto(`${base()}/integrations`);
  await bob.getByRole('link', { name: 'Connect GitLab' }).click();
  await bob.getByRole('button', { name: 'Authorize' }).click();
  await bob.getByRole('status').filter({ hasText: 'Connected GitLab account bob-lab' }).waitFor();
  expect(await bob.locator('article.integration h3').allTextContents()).toEqual([expect.stringContaining('GitLab · bob-lab')]);
  await ann.goto(`${base()}/integrations`);
  expect(await ann.locator('article.integration h3').allTextContents()).toEqual([expect.stringContaining('GitHub · ann-org')]);
  await shot(bob, 'tenants-bob-integrations');
});

it("refuses a spoofed installation_id: Bob installs, the callback names Ann's installation → installation_not_yours, nothing written", async () => {
  world.gh.setWebUser(bobGithub.id);
  // GitHub's redirect back is rewritten on its way to the browser, as an attacker editing the URL would.
  await bob.route(`${world.gh.webUrl}/github-apps/**`, async (route) => {
    if (route.request().method() !== 'POST') return route.continue();
    const response = await route.fetch({ maxRedirects: 0 });
    const location = new URL(response.headers().location);
    location.searchParams.set('installation_id', String(annInstallation));
    await route.fulfill({ response, headers: { ...response.headers(), location: location.toString() } });
  });
  await bob.goto(`${base()}/integrations`);
  await bob.getByRole('link', { name: 'Connect GitHub (read/write)' }).click();
  await bob.getByLabel('Account').fill('bob-org');
  await bob.getByRole('button', { name: 'Install' }).click();
  await bob.getByText('installation_not_yours').waitFor();
  await bob.getByText(`GitHub does not list installation ${annInstallation}`).waitFor();
  await shot(bob, 'tenants-installation-not-yours');
  await bob.unrouteAll();
  const rows = await h.core.db.platformIntegration.findMany({ where: { githubInstallationId: BigInt(annInstallation) } });
  expect(rows.map((r) => r.ownerId)).toEqual([ids.ann]);
  expect(await h.core.db.platformIntegration.count({ where: { ownerId: ids.bob, provider: 'github' } })).toBe(0);
});

it("refuses Ann's replayed callback (the state works once)", async () => {
  await ann.goto(annCallback);
  await ann.getByText('invalid_state').waitFor();
  await ann.getByText('the state was already used').waitFor();
  await shot(ann, 'tenants-state-replayed');
});

it("creates each one's rig through the picker of their own integration", async () => {
  for (const [page, town, repo, name] of [
    [ann, 'Anchorage', 'ann-org/harbor-web', 'harbor-web'],
    [bob, 'Breakwater', 'bob-lab-group/lighthouse', 'lighthouse'],
  ] as const) {
    await page.goto(`${base()}/towns/${ids[town]}/rigs/new`);
    const option = page.locator('label.repo', { hasText: repo });
    await option.waitFor();
    expect(await page.locator('label.repo .name').count()).toBe(2); // only their own integration's repositories
    await option.click();
    await page.locator('#panel-integration').getByRole('button', { name: 'Create rig' }).click();
    await page.waitForURL((url) => url.pathname.startsWith('/rigs/'));
    await page.getByRole('heading', { name, exact: true }).waitFor();
    ids[name] = page.url().split('/rigs/')[1];
  }
  await shot(bob, 'tenants-bob-rig');
});

it('dispatches with an API token made on the API tokens page, and the rig page shows it active', async () => {
  await ann.goto(`${base()}/`);
  await ann.locator('.account').getByRole('link', { name: 'API tokens' }).click();
  await ann.getByLabel('Name').fill('dispatcher');
  await ann.getByRole('button', { name: 'Create token' }).click();
  await ann.getByText('Copy the token now: it is not shown again.').waitFor();
  const token = (await ann.locator('[data-revealed-value]').textContent())!;
  expect(token).toMatch(/^rco_/);
  await shot(ann, 'tenants-api-token');
  const dispatch = async (rigId: string, bearer: string, container: string) =>
    fetch(`${h.url}/api/rigs/${rigId}/dispatches`, {
      method: 'POST',
      headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json' },
      body: JSON.stringify({ container_url: containers.add(container) }),
    });
  const mine = await dispatch(ids['harbor-web'], token, 'ann-agent');
  expect(mine.status).toBe(201);
  containers.setBearer('ann-agent', ((await mine.json()) as { container_token: string }).container_token);
  await containers.waitForPush('ann-agent', (p) => p.generation === 1);
  expect((await dispatch(ids.lighthouse, token, 'not-hers')).status).toBe(404);
  const bobToken = (await h.call<{ token: string }>('POST', `/api/owners/${ids.bob}/tokens`, { name: 'b' })).body.token;
  const his = await dispatch(ids.lighthouse, bobToken, 'bob-agent');
  expect(his.status).toBe(201);
  containers.setBearer('bob-agent', ((await his.json()) as { container_token: string }).container_token);
  await containers.waitForPush('bob-agent', (p) => p.generation === 1);
  await eventually(async () => {
    await ann.goto(`${base()}/rigs/${ids['harbor-web']}`);
    return (await ann.locator('[data-dispatch] [data-status="active"]').count()) === 1;
  });
  await shot(ann, 'tenants-ann-rig-dispatch');
  await ann.goto(`${base()}/owners/${ids.ann}/tokens`);
  await ann.locator('[data-token]', { hasText: 'dispatcher' }).getByText('UTC').nth(1).waitFor(); // last used
});

it("answers Ann's visit to Bob's town, rig and owner pages with not found", async () => {
  for (const path of [`/towns/${ids.Breakwater}`, `/rigs/${ids.lighthouse}`, `/owners/${ids.bob}/sessions`]) {
    const res = await ann.goto(`${base()}${path}`);
    expect([path, res?.status()]).toEqual([path, 404]);
  }
  await shot(ann, 'tenants-not-found');
});

it('shows admin every town with its owner, and an owner view per owner', async () => {
  const admin = await newPage(browser, errors, world.publicUrl);
  await signIn(admin, base(), '/');
  // Fresh towns, so they are among the most recent ones on the home page while other test files add theirs.
  for (const [owner, name] of [
    [ids.ann, 'Anchorage Pier'],
    [ids.bob, 'Breakwater Pier'],
  ]) {
    expect((await h.call('POST', '/api/towns', { name, owner_id: owner })).status).toBe(201);
  }
  await admin.reload();
  const rows = admin.locator('[data-towns] tbody tr');
  await rows.first().waitFor();
  const text = await rows.allTextContents();
  expect(text.find((t) => t.includes('Anchorage Pier'))).toContain('Ann Octo');
  // Bob signed in by a link and has no name from a provider: his short id stands for him.
  expect(text.find((t) => t.includes('Breakwater Pier'))).toContain(ids.bob.slice(0, 8));
  await shot(admin, 'tenants-admin-home');
  await admin.locator('tr', { hasText: 'Anchorage Pier' }).getByRole('link', { name: 'Ann Octo' }).click();
  await admin.getByRole('heading', { name: 'Towns of Ann Octo' }).waitFor();
  expect(await townNames(admin)).toEqual(['Anchorage', 'Anchorage Pier']);
  await admin.context().close();
});

it("lists Bob's sessions and signs him out everywhere", async () => {
  await bob.goto(`${base()}/owners/${ids.bob}/sessions`);
  await bob.getByText('this browser').waitFor();
  await shot(bob, 'tenants-sessions');
  bob.once('dialog', (d) => void d.accept());
  await bob.getByRole('button', { name: 'Sign out everywhere' }).click();
  await bob.waitForURL((url) => url.pathname === '/login');
  expect(await h.core.db.session.count({ where: { ownerId: ids.bob } })).toBe(0);
});
