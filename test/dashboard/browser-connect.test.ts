// In a real (headless) browser: sign in, connect GitHub and GitLab through the real redirects of
// the fakes' pages, and see a suspension arrive by webhook. Screenshots go to test/artifacts/.
import { randomUUID } from 'node:crypto';
import type { Browser, Page } from 'playwright-core';
import { FakeGitHub } from '../fakes/github';
import type { Harness } from '../helpers/harness';
import { launchBrowser, newPage, shot, signIn } from './browser-kit';
import { dashboardWorld, startDashboard, WEBHOOK_SECRET, type DashboardWorld } from './dashboard-world';

let world: DashboardWorld;
let h: Harness;
let browser: Browser;
let page: Page;
const errors: string[] = [];
const owner = randomUUID();
let townId: string;

beforeAll(async () => {
  world = await dashboardWorld();
  [h, browser] = await Promise.all([startDashboard(world, { worker: false }), launchBrowser()]);
  page = await newPage(browser, errors, world.publicUrl);
  townId = (await h.call<{ id: string }>('POST', '/api/towns', { name: 'Harbor', owner_id: owner })).body.id;
});

afterAll(async () => {
  await browser?.close();
  await h?.close();
  await world?.close();
});

afterEach(() => {
  expect(errors).toEqual([]);
});

const base = () => world.publicUrl;

it('signs in and shows a town without integrations, with a link to connect one', async () => {
  await signIn(page, base(), `/towns/${townId}`, 'login');
  await page.getByRole('heading', { name: 'Harbor' }).waitFor();
  const connect = page.getByRole('link', { name: 'Connect integration' });
  expect(await connect.getAttribute('href')).toBe(`/integrations?owner_id=${owner}`);
  await shot(page, 'town-without-integrations');
  await connect.click();
  await page.getByRole('heading', { name: 'Integrations', level: 1 }).waitFor();
  await page.getByText('Nothing connected yet.').waitFor();
});

it('connects GitHub: our install route → the app install page → Install → our setup callback', async () => {
  world.gh.setPendingInstallRepositories('rc-standard', [{ name: 'web-app' }, { name: 'api-server' }, { name: 'docs', private: false }]);
  await page.goto(`${base()}/integrations?owner_id=${owner}`);
  await page.getByRole('link', { name: 'Connect GitHub (read/write)' }).click();
  await page.waitForURL((url) => url.href.startsWith(`${world.gh.webUrl}/github-apps/rc-standard/installations/new`));
  await page.getByLabel('Account').fill('acme');
  await page.getByRole('button', { name: 'Install' }).click();
  await page.waitForURL((url) => url.origin === base() && url.pathname === '/integrations' && url.searchParams.has('connected'));
  await page.getByRole('status').filter({ hasText: 'Connected GitHub account acme' }).waitFor();
  const card = page.locator('article.integration', { hasText: 'GitHub · acme' });
  await card.getByText('active').waitFor();
  expect(await card.locator('[data-repository-count]').textContent()).toBe('3');
});

it('connects GitLab: our connect route → GitLab authorize → Authorize → our callback', async () => {
  const user = world.gl.addUser({ username: 'gl-bob' });
  world.gl.addProjects(user.id, [{ path: 'infra' }, { path: 'mobile', visibility: 'public' }]);
  world.gl.setAuthorizeUser(user.id);
  await page.getByRole('link', { name: 'Connect GitLab' }).click();
  await page.waitForURL((url) => url.href.startsWith(`${world.gl.baseUrl}/oauth/authorize`));
  await page.getByRole('button', { name: 'Authorize' }).click();
  await page.waitForURL((url) => url.origin === base() && url.searchParams.has('connected'));
  await page.getByRole('status').filter({ hasText: 'Connected GitLab account gl-bob' }).waitFor();
  await shot(page, 'integrations');
});

it('shows a denied GitLab authorization as a clear page', async () => {
  await page.goto(`${base()}/integrations?owner_id=${owner}`);
  await page.getByRole('link', { name: 'Connect GitLab' }).click();
  await page.getByRole('button', { name: 'Deny' }).click();
  await page.getByRole('heading', { name: 'GitLab access denied' }).waitFor();
  await page.getByText('GitLab access was denied').waitFor();
  await shot(page, 'gitlab-denied');
});

it('shows the town with its integrations', async () => {
  await page.goto(`${base()}/towns/${townId}`);
  const rows = page.locator('section', { hasText: 'Integrations' }).locator('tbody tr');
  await rows.first().waitFor();
  expect(await rows.allTextContents()).toEqual([expect.stringContaining('acme'), expect.stringContaining('gl-bob')]);
  await shot(page, 'town-with-integrations');
});

it('shows a suspension that arrives by webhook, with what to do about it', async () => {
  const integration = await h.core.db.platformIntegration.findFirstOrThrow({ where: { ownerId: owner, provider: 'github' } });
  const installationId = Number(integration.githubInstallationId);
  world.gh.suspend(installationId);
  const res = await FakeGitHub.deliverWebhook(
    `${h.url}/webhooks/github`,
    WEBHOOK_SECRET,
    'installation',
    world.gh.installationWebhookPayload(installationId, 'suspend'),
  );
  expect(res.status).toBe(200);
  await page.goto(`${base()}/integrations?owner_id=${owner}`);
  const card = page.locator('article.integration', { hasText: 'GitHub · acme' });
  await card.locator('[data-status="suspended"]').waitFor();
  await card.getByText('Unsuspend the app on GitHub').waitFor();
  await shot(page, 'integration-suspended');
});

it("creates a town from the home page, with the API's message next to a bad owner id", async () => {
  await page.goto(`${base()}/`);
  const form = page.locator('form', { has: page.getByRole('button', { name: 'Create town' }) });
  await form.getByLabel('Name').fill('Lighthouse');
  await form.getByLabel('Owner id').fill('not-a-uuid');
  await form.getByRole('button', { name: 'Create town' }).click();
  await form.locator('[data-error-for="owner_id"]', { hasText: 'owner_id: must be a UUID' }).waitFor();
  await shot(page, 'home');
  await form.getByLabel('Owner id').fill(owner);
  await form.getByRole('button', { name: 'Create town' }).click();
  await page.getByRole('heading', { name: 'Lighthouse' }).waitFor();
  await page.goto(`${base()}/`);
  await page.getByRole('link', { name: 'Lighthouse' }).waitFor();
});

it('signs out', async () => {
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.waitForURL((url) => url.pathname === '/login');
  await page.goto(`${base()}/`);
  await page.waitForURL((url) => url.pathname === '/login');
});
