// In a real (headless) browser: create rigs through the repository picker and by manual URL,
// reconnect and disconnect one, and see a suspension reach the rig's dispatches. Screenshots go to
// test/artifacts/.
import { randomUUID } from 'node:crypto';
import type { Browser, Page } from 'playwright-core';
import { FakeContainerHost } from '../fakes/container';
import { FakeGitHub } from '../fakes/github';
import { eventually, type Harness } from '../helpers/harness';
import { dispatchTo } from '../helpers/scenario';
import { launchBrowser, newPage, shot, signIn } from './browser-kit';
import { dashboardWorld, GITLAB_CLIENT, startDashboard, WEBHOOK_SECRET, type DashboardWorld } from './dashboard-world';

let world: DashboardWorld;
let h: Harness;
let browser: Browser;
let page: Page;
let containers: FakeContainerHost;
const errors: string[] = [];
const owner = randomUUID();
let townId: string;
let installationId: number;
let githubIntegrationId: string;
let rigId: string;

beforeAll(async () => {
  world = await dashboardWorld();
  containers = await FakeContainerHost.start();
  [h, browser] = await Promise.all([startDashboard(world), launchBrowser()]);
  const inst = world.gh.addInstallation({
    appId: world.standard.appId,
    account: { login: 'acme' },
    repositories: [
      { name: 'web-app' },
      { name: 'web-site', private: false, default_branch: 'gh-pages' },
      { name: 'api-server', default_branch: 'develop' },
    ],
  });
  installationId = inst.installationId;
  githubIntegrationId = (
    await h.call<{ id: string }>('POST', '/api/integrations', {
      provider: 'github',
      owner_id: owner,
      installation_id: installationId,
      app_type: 'standard',
    })
  ).body.id;
  const user = world.gl.addUser({ username: 'gl-carol' });
  world.gl.addProjects(user.id, [{ path: 'web-mobile' }, { path: 'infra' }]);
  const grant = world.gl.grant(user.id, GITLAB_CLIENT.clientId);
  await h.call('POST', '/api/integrations', {
    provider: 'gitlab',
    owner_id: owner,
    access_token: grant.accessToken,
    refresh_token: grant.refreshToken,
    expires_at: grant.expiresAt.toISOString(),
  });
  townId = (await h.call<{ id: string }>('POST', '/api/towns', { name: 'Quarry', owner_id: owner })).body.id;
  page = await newPage(browser, errors, world.publicUrl);
  await signIn(page, world.publicUrl, `/towns/${townId}`);
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
const repoOption = (fullName: string) => page.locator('label.repo', { hasText: fullName });
const picked = () => page.locator('#panel-integration');
const manual = () => page.locator('#panel-manual');

it('creates a rig through the picker: search, choose, see the fields filled, land on the rig page', async () => {
  await page.goto(`${base()}/towns/${townId}`);
  await page.getByRole('link', { name: 'Create rig' }).click();
  await page.getByRole('tab', { name: 'From integration', selected: true }).waitFor();
  await repoOption('acme/web-app').waitFor(); // loaded on open, grouped by provider
  expect(await page.locator('.picker-results legend').allTextContents()).toEqual([
    expect.stringMatching(/^GitHub · acme/),
    expect.stringMatching(/^GitLab · gl-carol/),
  ]);

  await page.getByLabel('Search repositories').fill('web');
  await page.getByRole('status').filter({ hasText: '3 repositories match "web"' }).waitFor();
  expect(await page.locator('label.repo .name').allTextContents()).toEqual(['acme/web-app', 'acme/web-site', 'gl-carol-group/web-mobile']);
  expect(await repoOption('acme/web-app').locator('.badge').textContent()).toBe('private');
  await expect(repoOption('acme/web-site').locator('.badge').count()).resolves.toBe(0);
  await shot(page, 'rig-picker-search');

  await repoOption('acme/web-site').click();
  expect(await picked().getByLabel('Rig name').inputValue()).toBe('web-site');
  expect(await picked().getByLabel('Git URL').inputValue()).toMatch(/\/acme\/web-site\.git$/);
  expect(await picked().getByLabel('Default branch').inputValue()).toBe('gh-pages');
  expect(await picked().getByLabel('Git URL').getAttribute('readonly')).toBe('');
  await picked().getByRole('button', { name: 'Create rig' }).click();

  await page.waitForURL((url) => url.pathname.startsWith('/rigs/'));
  rigId = page.url().split('/rigs/')[1];
  await page.getByRole('heading', { name: 'web-site' }).waitFor();
  expect(await page.locator('[data-credential-source]').textContent()).toBe('GitHub App installation acme (active)');
  await shot(page, 'rig-settings');
  const rig = await h.call<{ platform_integration_id: string; default_branch: string }>('GET', `/api/rigs/${rigId}`);
  expect(rig.body).toMatchObject({ platform_integration_id: githubIntegrationId, default_branch: 'gh-pages' });
});

it('shows the empty and error states of the picker, and refreshes from the provider', async () => {
  await page.goto(`${base()}/towns/${townId}/rigs/new`);
  await page.getByLabel('Search repositories').fill('no-such-repository');
  await page.getByRole('status').filter({ hasText: 'No repositories match' }).waitFor();
  world.gh.addRepository(installationId, { name: 'no-such-repository-yet' });
  world.gh.failNext(1, { status: 503, match: (_m, path) => path.startsWith('/app/installations') });
  await page.getByRole('button', { name: 'Refresh' }).click();
  await page.locator('.picker-results .field-error', { hasText: 'provider_unavailable' }).waitFor();
  await page.getByRole('button', { name: 'Refresh' }).click();
  await repoOption('acme/no-such-repository-yet').waitFor();
  // Submitting without a choice says what is missing instead of calling the API.
  await picked().getByLabel('Rig name').fill('unchosen');
  await picked().getByRole('button', { name: 'Create rig' }).click();
  await picked().getByText('Choose a repository first.').waitFor();
});

it("shows the API's message next to the field for a bad manual URL", async () => {
  await page.goto(`${base()}/towns/${townId}/rigs/new`);
  await page.getByRole('tab', { name: 'Manual URL' }).click();
  await manual().getByLabel('Rig name').fill('legacy');
  const url = manual().getByLabel('Git URL');
  const create = manual().getByRole('button', { name: 'Create rig' });
  await url.fill('http://git.example.com/team/legacy.git');
  await create.click();
  const fieldError = manual().locator('[data-error-for="git_url"]');
  await fieldError.filter({ hasText: 'git_url: must use https://' }).waitFor();
  expect(await url.getAttribute('aria-invalid')).toBe('true');
  await shot(page, 'rig-manual-error');

  await url.fill('https://user:secret@git.example.com/team/legacy.git');
  await create.click();
  await fieldError.filter({ hasText: 'must not contain credentials' }).waitFor();
  await url.fill('https://git.example.com/team/legacy.git');
  await create.click();
  await page.waitForURL((u) => u.pathname.startsWith('/rigs/'));
  expect(await page.locator('[data-credential-source]').textContent()).toBe('No credentials: connect an integration or add a town token');
});

it('reconnects the rig to another repository with the same picker', async () => {
  await page.goto(`${base()}/rigs/${rigId}`);
  await page.locator('summary', { hasText: 'Reconnect' }).click();
  await page.getByLabel('Search repositories').fill('infra');
  await page.getByRole('status').filter({ hasText: '1 repository matches "infra"' }).waitFor();
  await repoOption('gl-carol-group/infra').click();
  await shot(page, 'rig-reconnect');
  await page.getByRole('button', { name: 'Reconnect' }).click();
  await page.locator('[data-credential-source]', { hasText: 'GitLab OAuth grant of gl-carol (active)' }).waitFor();
  const rig = await h.call<{ repository_full_name: string; git_url: string }>('GET', `/api/rigs/${rigId}`);
  expect(rig.body.repository_full_name).toBe('gl-carol-group/infra');
  expect(rig.body.git_url).toBe(`${world.gl.baseUrl}/gl-carol-group/infra.git`);
  // Back to GitHub for the suspension test.
  await page.locator('summary', { hasText: 'Reconnect' }).click();
  await page.getByLabel('Search repositories').fill('api-server');
  await page.getByRole('status').filter({ hasText: '1 repository matches "api-server"' }).waitFor();
  await repoOption('acme/api-server').click();
  await page.getByRole('button', { name: 'Reconnect' }).click();
  await page.locator('[data-credential-source]', { hasText: 'GitHub App installation acme (active)' }).waitFor();
});

it("shows a suspended installation on the rig and in its dispatch's last error", async () => {
  const d = await dispatchTo(h, containers, rigId, 'browser-rig');
  await containers.waitForPush(d.container, (p) => p.generation === 1);
  world.gh.suspend(installationId);
  await FakeGitHub.deliverWebhook(
    `${h.url}/webhooks/github`,
    WEBHOOK_SECRET,
    'installation',
    world.gh.installationWebhookPayload(installationId, 'suspend'),
  );
  // The workflow re-mints within a second or two of the webhook; the page shows what the API has.
  await eventually(
    async () => (await h.call<{ status: string }>('GET', `/api/dispatches/${d.dispatchId}`)).body.status === 'credential_error',
    20_000,
    'credential_error',
  );
  await page.goto(`${base()}/rigs/${rigId}`);
  await page.locator('[data-rig-integration] [data-status="suspended"]').waitFor();
  const row = page.locator(`tr[data-dispatch="${d.dispatchId}"]`);
  await row.locator('[data-status="credential_error"]').waitFor();
  expect(await row.textContent()).toContain('installation_suspended');
  await shot(page, 'rig-suspended');
  world.gh.unsuspend(installationId);
  await FakeGitHub.deliverWebhook(
    `${h.url}/webhooks/github`,
    WEBHOOK_SECRET,
    'installation',
    world.gh.installationWebhookPayload(installationId, 'unsuspend'),
  );
  await h.call('POST', `/api/dispatches/${d.dispatchId}/stop`);
});

it('disconnects the rig, which then falls back on a town token', async () => {
  await h.call('PUT', `/api/towns/${townId}/git-auth`, { tokens: [{ host: new URL(world.gh.webUrl).host, token: 'static-token-123' }] });
  await page.goto(`${base()}/rigs/${rigId}`);
  page.once('dialog', (dialog) => void dialog.accept());
  await page.getByRole('button', { name: 'Disconnect' }).click();
  await page.locator('[data-credential-source]', { hasText: 'Town token for' }).waitFor();
  expect(await page.content()).not.toContain('static-token-123');
});

it('replaces the town tokens from the town page and shows field errors by row', async () => {
  await page.goto(`${base()}/towns/${townId}`);
  await page.getByText('Replace town tokens').click();
  await page.getByRole('button', { name: 'Add host' }).click();
  await page.locator('input[name="tokens.1.host"]').fill('gitlab.example.com');
  await page.getByRole('button', { name: 'Save tokens' }).click();
  await page.locator('[data-error-for="tokens.0.token"]', { hasText: 'tokens.0.token' }).waitFor();
  await page.locator('input[name="tokens.0.token"]').fill('new-static-token');
  await page.locator('input[name="tokens.1.token"]').fill('gl-static-token');
  await page.getByRole('button', { name: 'Save tokens' }).click();
  await page.locator('tbody tr', { hasText: 'gitlab.example.com' }).waitFor();
  expect(await page.content()).not.toContain('new-static-token');
});

it('shows an error next to its own row when a row above it was left empty', async () => {
  await page.goto(`${base()}/towns/${townId}`);
  await page.getByText('Replace town tokens').click();
  // Two rows from the last save: the first emptied (left out of the request), the second without a token.
  await page.locator('input[name="tokens.0.host"]').fill('');
  await page.locator('input[name="tokens.1.host"]').fill('gitlab.example.com');
  await page.getByRole('button', { name: 'Save tokens' }).click();
  // The API names the first row it was sent (tokens.0); on the page that is the second row.
  await page.locator('[data-error-for="tokens.1.token"]', { hasText: 'is required' }).waitFor();
  expect(await page.locator('[data-error-for="tokens.0.token"]').textContent()).toBe('');
  expect(await page.locator('input[name="tokens.1.token"]').getAttribute('aria-invalid')).toBe('true');
});

it('works at 360 px and from the keyboard', async () => {
  await page.setViewportSize({ width: 360, height: 740 });
  await page.goto(`${base()}/towns/${townId}/rigs/new`);
  await repoOption('acme/web-app').waitFor();
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  expect(overflow).toBeLessThanOrEqual(0);
  await shot(page, 'narrow-rig-new');
  await page.goto(`${base()}/rigs/${rigId}`);
  await shot(page, 'narrow-rig');
  await page.goto(`${base()}/towns/${townId}`);
  await shot(page, 'narrow-town');

  await page.setViewportSize({ width: 1100, height: 800 });
  await page.goto(`${base()}/towns/${townId}/rigs/new`);
  await page.getByRole('tab', { name: 'From integration' }).focus();
  await page.keyboard.press('ArrowRight');
  expect(await page.evaluate(() => document.activeElement?.textContent)).toBe('Manual URL');
  expect(await page.locator('#panel-manual').isVisible()).toBe(true);
  await page.keyboard.press('ArrowLeft');
  await repoOption('acme/web-app').waitFor();
  await page.getByLabel('Search repositories').focus();
  await page.keyboard.press('Tab'); // Refresh
  await page.keyboard.press('Tab'); // first repository
  await page.keyboard.press('Space');
  expect(await picked().getByLabel('Rig name').inputValue()).toBe('web-app');
});

it('creates a read-only rig by unticking "Agents may push", and lets agents push again from the rig page', async () => {
  await page.goto(`${base()}/towns/${townId}/rigs/new`);
  await page.getByLabel('Search repositories').fill('web-mobile');
  await page.getByRole('status').filter({ hasText: '1 repository matches "web-mobile"' }).waitFor();
  await repoOption('gl-carol-group/web-mobile').click();
  const push = picked().getByLabel('Agents may push');
  expect(await push.isChecked()).toBe(true); // write is the default
  await push.uncheck();
  await shot(page, 'rig-new-read-only');
  await picked().getByRole('button', { name: 'Create rig' }).click();
  await page.waitForURL((url) => url.pathname.startsWith('/rigs/'));
  const readRig = page.url().split('/rigs/')[1];
  expect((await h.call<{ access: string }>('GET', `/api/rigs/${readRig}`)).body.access).toBe('read');
  expect(await page.locator('[data-rig-access]').getAttribute('data-rig-access')).toBe('read');
  expect(await page.locator('[data-rig-access]').textContent()).toBe('clone and fetch only (read-only tokens)');
  expect(await page.getByLabel('Agents may push').isChecked()).toBe(false);
  expect(await page.locator('[data-access-hint]').textContent()).toMatch(/read_repository instead of write_repository/);
  await shot(page, 'rig-settings-read-only');

  await page.getByLabel('Agents may push').check();
  await page.getByRole('button', { name: 'Save access' }).click();
  await page.locator('[data-rig-access="write"]', { hasText: 'clone and push' }).waitFor();
  expect((await h.call<{ access: string }>('GET', `/api/rigs/${readRig}`)).body.access).toBe('write');
  await page.getByLabel('Agents may push').uncheck();
  await page.getByRole('button', { name: 'Save access' }).click();
  await page.locator('[data-rig-access="read"]').waitFor();
  await page.goto(`${base()}/towns/${townId}`);
  await page.locator('li', { hasText: 'web-mobile' }).locator('[data-rig-access="read"]', { hasText: 'read-only' }).waitFor();
});

it('locks "Agents may push" off for a lite (read-only) installation, in the picker and on the rig page', async () => {
  const inst = world.gh.addInstallation({ appId: world.lite.appId, account: { login: 'acme-docs' }, repositories: [{ name: 'handbook' }] });
  await h.call('POST', '/api/integrations', {
    provider: 'github',
    owner_id: owner,
    installation_id: inst.installationId,
    app_type: 'lite',
  });
  await page.goto(`${base()}/towns/${townId}/rigs/new`);
  await page.getByLabel('Search repositories').fill('handbook');
  await page.getByRole('status').filter({ hasText: '1 repository matches "handbook"' }).waitFor();
  await repoOption('acme-docs/handbook').click();
  const push = picked().getByLabel('Agents may push');
  expect(await push.isChecked()).toBe(false);
  expect(await push.isDisabled()).toBe(true);
  expect(await picked().locator('[data-access-hint]').textContent()).toMatch(/lite \(read-only\) GitHub installation only reads/);
  // Choosing a read/write repository again gives the box back as it was.
  await page.getByLabel('Search repositories').fill('web-app');
  await page.getByRole('status').filter({ hasText: '1 repository matches "web-app"' }).waitFor();
  await repoOption('acme/web-app').click();
  expect(await push.isDisabled()).toBe(false);
  expect(await push.isChecked()).toBe(true);
  await page.getByLabel('Search repositories').fill('handbook');
  await page.getByRole('status').filter({ hasText: '1 repository matches "handbook"' }).waitFor();
  await repoOption('acme-docs/handbook').click();
  await picked().getByRole('button', { name: 'Create rig' }).click();
  await page.waitForURL((url) => url.pathname.startsWith('/rigs/'));
  const liteRig = page.url().split('/rigs/')[1];
  expect((await h.call<{ access: string }>('GET', `/api/rigs/${liteRig}`)).body.access).toBe('read');
  expect(await page.getByLabel('Agents may push').isDisabled()).toBe(true);
  expect(await page.getByRole('button', { name: 'Save access' }).count()).toBe(0);
  expect(await page.locator('[data-access-hint]').textContent()).toMatch(/connect the rig through the read\/write app/);
});
