// The Temporal UI screenshots in docs/temporal-ui/ (README "Finding a rig's runs in the Temporal UI"):
// a dev server with its UI, the real API and worker, a few dispatches against the fakes, and headless
// Chromium. Run by `npm run docs:temporal-ui`, never by `npm test` (the name ends in .scenarios.ts).
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { freePort, PROJECT_ROOT, resolveTemporalCli, startDevServer, type DevServer } from '../../scripts/temporal-cli';
import { launchBrowser, newPage } from '../dashboard/browser-kit';
import { FakeContainerHost } from '../fakes/container';
import { eventually, newOwner, startHarness, type Harness } from '../helpers/harness';
import { dispatchTo, githubWorld, registerGithubAgain, type Dispatched, type GithubWorld } from '../helpers/scenario';

const OUT = join(PROJECT_ROOT, 'docs', 'temporal-ui');

let server: DevServer;
let world: GithubWorld;
let containers: FakeContainerHost;
let h: Harness;

beforeAll(async () => {
  mkdirSync(OUT, { recursive: true });
  const cli = await resolveTemporalCli(process.env, () => undefined);
  server = await startDevServer({ cli, port: await freePort(), uiPort: await freePort() });
  world = await githubWorld({ tokenLifetimeSeconds: 12 });
  containers = await FakeContainerHost.start();
  h = await startHarness({
    env: {
      ...world.env,
      TEMPORAL_ADDRESS: server.address,
      TOKEN_REFRESH_MARGIN_SECONDS: '4',
      REFRESH_JITTER_MAX_SECONDS: '1',
      PUBLIC_URL: 'https://repo-connect.example.com',
    },
  });
}, 120_000);

afterAll(async () => {
  await h?.close();
  await containers?.close();
  await world?.gh.close();
  await server?.stop();
});

/** An owner's GitHub installation `login` with `repos`, a town, and a rig per repository. */
async function githubRigs(login: string, repos: string[], appType: 'standard' | 'lite' = 'standard') {
  const app = appType === 'lite' ? world.lite : world.standard;
  const inst = world.gh.addInstallation({ appId: app.appId, account: { login }, repositories: repos.map((name) => ({ name })) });
  const owner = newOwner();
  const integration = await h.call<{ id: string }>('POST', '/api/integrations', {
    provider: 'github',
    owner_id: owner,
    installation_id: inst.installationId,
    app_type: appType,
  });
  const town = await h.call<{ id: string }>('POST', '/api/towns', { name: `${login}-town`, owner_id: owner });
  const rigs: string[] = [];
  for (const repo of inst.repositories) {
    const rig = await h.call<{ id: string }>('POST', `/api/towns/${town.body.id}/rigs`, {
      name: repo.name,
      platform_integration_id: integration.body.id,
      repository_id: repo.id,
    });
    rigs.push(rig.body.id);
  }
  return { installationId: inst.installationId, owner, rigs };
}

async function shot(page: Page, name: string, text: string): Promise<void> {
  await page.getByText(text).first().waitFor();
  await page.waitForTimeout(1500); // the UI keeps polling, so there is no network idle to wait for
  await page.screenshot({ path: join(OUT, `${name}.png`) });
}

/** Shows the search attributes as columns of the workflow list (the UI keeps this per browser). */
async function showSearchAttributeColumns(page: Page): Promise<void> {
  await page.getByTestId('workflows-summary-table-configuration-button').click();
  // The last button of a row adds it (not in view) or removes it (in view): make room, then add.
  for (const name of ['Run ID', 'Type', 'End', 'Repository', 'RigId', 'DispatchStatus', 'CredentialSource'])
    await page.getByTestId(`orderable-list-item-${name}`).getByRole('button').last().click();
}

it('screenshots the workflow list, a list filtered by RigId and one run', async () => {
  const acme = await githubRigs('acme', ['api-server', 'web-app', 'billing']);
  const globex = await githubRigs('globex', ['docs'], 'lite');
  const ds: Dispatched[] = [];
  for (const [i, rig] of [...acme.rigs, ...globex.rigs, acme.rigs[0]].entries()) ds.push(await dispatchTo(h, containers, rig, `ui-${i}`));
  const town = await h.call<{ id: string }>('POST', '/api/towns', { name: 'legacy', owner_id: newOwner() });
  await h.call('PUT', `/api/towns/${town.body.id}/git-auth`, { tokens: [{ host: 'git.example.com', token: `static-${newOwner()}` }] });
  const manual = await h.call<{ id: string }>('POST', `/api/towns/${town.body.id}/rigs`, {
    name: 'legacy-tools',
    git_url: 'https://git.example.com/ops/legacy-tools.git',
  });
  ds.push(await dispatchTo(h, containers, manual.body.id, 'ui-manual'));
  for (const d of ds.slice(0, 4)) await containers.waitForPush(d.container, (p) => p.generation === 2, 30_000);
  world.gh.suspend(globex.installationId); // one dispatch in credential_error
  await registerGithubAgain(h, globex, 'lite');
  await eventually(
    async () => (await h.call<{ status: string }>('GET', `/api/dispatches/${ds[3].dispatchId}`)).body.status === 'credential_error',
    20_000,
  );
  await h.call('POST', `/api/dispatches/${ds[4].dispatchId}/stop`);
  await eventually(async () => (await h.call<{ status: string }>('GET', `/api/dispatches/${ds[4].dispatchId}`)).body.status === 'stopped');

  const browser = await launchBrowser();
  try {
    const page = await newPage(browser);
    await page.setViewportSize({ width: 2300, height: 900 }); // room for the search attribute columns
    const ui = `${server.uiUrl}/namespaces/default`;
    await page.goto(`${ui}/workflows`);
    await page.getByRole('link', { name: ds[0].workflowId }).waitFor();
    await showSearchAttributeColumns(page);
    await page.goto(`${ui}/workflows`); // closes the drawer; the columns stay (kept in the browser)
    await shot(page, 'workflow-list', ds[0].workflowId);
    await page.goto(`${ui}/workflows?query=${encodeURIComponent(`RigId = "${acme.rigs[0]}"`)}`);
    await shot(page, 'workflow-list-rig', ds[0].workflowId);
    const run = (await h.core.temporal.workflow.getHandle(ds[0].workflowId).describe()).runId;
    await page.setViewportSize({ width: 1600, height: 1500 });
    await page.goto(`${ui}/workflows/${ds[0].workflowId}/${run}/history`);
    await shot(page, 'workflow-run', 'refresh generation 2');
    await page.getByText('User Metadata', { exact: true }).click();
    await page.waitForTimeout(3000);
    await page.screenshot({ path: join(OUT, 'workflow-run-metadata.png') });
  } finally {
    await browser.close();
  }
  for (const d of ds) await h.call('POST', `/api/dispatches/${d.dispatchId}/stop`);
}, 240_000);
