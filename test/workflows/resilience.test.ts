// The token loop under trouble: a provider outage shorter than the margin, a suspended and
// re-activated installation, and a worker process killed mid-sleep. Lifetimes are seconds long.
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { FakeContainerHost } from '../fakes/container';
import { eventually, startHarness, type Harness } from '../helpers/harness';
import { dispatchTo, githubRig, githubWorld, type GithubWorld } from '../helpers/scenario';
import { freePort } from '../../scripts/temporal-cli';
import { statusQuery } from '../../workflows/git-token-workflow';
import { DispatchStatusKey } from '../../workflows/search-attributes';

let world: GithubWorld;
let containers: FakeContainerHost;

beforeAll(async () => {
  world = await githubWorld();
  containers = await FakeContainerHost.start();
});
afterAll(async () => {
  await containers?.close();
  await world?.gh.close();
});

type Status = { status: string; generation: number; last_error: { code: string } | null };

describe('with an in-process worker', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ env: { ...world.env, TOKEN_REFRESH_MARGIN_SECONDS: '5', REFRESH_JITTER_MAX_SECONDS: '0.5' } });
  });
  afterAll(async () => h?.close());

  it('rides out a provider outage shorter than the margin: degraded meanwhile, never an expired token', async () => {
    world.gh.tokenLifetimeSeconds = 12;
    const rig = await githubRig(h, world, { repos: 1 });
    const d = await dispatchTo(h, containers, rig.rigId, 'outage');
    const first = await containers.waitForPush(d.container, (p) => p.generation === 1);
    const expiry = Date.parse(first.expires_at!);

    // The outage covers the planned refresh (about 7 s after the mint) and ends 4 s later.
    await new Promise((r) => setTimeout(r, Math.max(0, expiry - 7000 - Date.now())));
    world.gh.setOutage(503);
    const seen = new Set<string>();
    const watch = setInterval(
      () => void h.call<Status>('GET', `/api/dispatches/${d.dispatchId}`).then((r) => seen.add(r.body.status)),
      200,
    );
    await new Promise((r) => setTimeout(r, 4000));
    world.gh.setOutage(null);

    const second = await containers.waitForPush(d.container, (p) => p.generation === 2, 10_000);
    clearInterval(watch);
    expect(second.receivedAt).toBeLessThan(expiry); // the container never held an expired token
    expect(seen.has('degraded')).toBe(true); // and the failure was visible meanwhile
    const events = await h.core.db.tokenEvent.findMany({ where: { dispatchId: d.dispatchId, kind: 'refresh_failed' } });
    expect(events.length).toBeGreaterThan(0);
    expect(events[0].detail).toMatch(/^provider_unavailable/);
    const after = await eventually(async () => {
      const r = await h.call<Status>('GET', `/api/dispatches/${d.dispatchId}`);
      return r.body.status === 'active' ? r.body : null;
    });
    expect(after.last_error).toBeNull();
    await h.call('POST', `/api/dispatches/${d.dispatchId}/stop`);
  });

  it('a provider outage before the first token leaves the dispatch starting, in the API and in Temporal alike', async () => {
    world.gh.tokenLifetimeSeconds = 12;
    const rig = await githubRig(h, world, { repos: 1 });
    world.gh.setOutage(503);
    const d = await dispatchTo(h, containers, rig.rigId, 'outage-at-start');
    const handle = h.core.temporal.workflow.getHandle(d.workflowId);
    // The workflow has seen the failure (its query says so) and published what it shows.
    const failing = await eventually(async () => {
      const v = await handle.query(statusQuery);
      return v.lastError ? v : null;
    }, 15_000);
    expect(failing).toMatchObject({ status: 'starting', generation: 0, lastError: { code: 'provider_unavailable' } });
    expect((await handle.describe()).typedSearchAttributes.get(DispatchStatusKey)).toBe('starting');
    const api = await h.call<Status>('GET', `/api/dispatches/${d.dispatchId}`);
    expect(api.body).toMatchObject({ status: 'starting', last_error: { code: 'provider_unavailable' } });
    world.gh.setOutage(null);
    await containers.waitForPush(d.container, (p) => p.generation === 1, 15_000);
    expect(await eventually(async () => ((await handle.query(statusQuery)).status === 'active' ? true : null))).toBe(true);
    await h.call('POST', `/api/dispatches/${d.dispatchId}/stop`);
  });

  it('shows a suspended installation as credential_error and resumes once it is active again', async () => {
    world.gh.tokenLifetimeSeconds = 8;
    const rig = await githubRig(h, world, { repos: 1 });
    const d = await dispatchTo(h, containers, rig.rigId, 'suspend');
    await containers.waitForPush(d.container, (p) => p.generation === 1);
    world.gh.suspend(rig.installationId);

    const failed = await eventually(async () => {
      const r = await h.call<Status>('GET', `/api/dispatches/${d.dispatchId}`);
      return r.body.status === 'credential_error' ? r.body : null;
    }, 20_000);
    expect(failed.last_error?.code).toBe('installation_suspended');
    const integrations = await h.call<{ integrations: Array<{ id: string; status: string }> }>(
      'GET',
      `/api/integrations?owner_id=${rig.owner}`,
    );
    expect(integrations.body.integrations[0].status).toBe('suspended');
    const mintsWhileSuspended = world.gh.stats.mintsFor(rig.installationId);
    await new Promise((r) => setTimeout(r, 2000));
    expect(world.gh.stats.mintsFor(rig.installationId)).toBe(mintsWhileSuspended); // waits, no busy loop

    // Re-activated at GitHub; registering it again (or the unsuspend webhook) tells the dispatch.
    world.gh.unsuspend(rig.installationId);
    const again = await h.call<{ status: string }>('POST', '/api/integrations', {
      provider: 'github',
      owner_id: rig.owner,
      installation_id: rig.installationId,
      app_type: 'standard',
    });
    expect(again.body.status).toBe('active');
    const resumed = await containers.waitForPush(d.container, (p) => p.generation === 2, 10_000);
    expect(world.gh.isTokenLive(resumed.token, rig.repo.full_name, 'write')).toBe(true);
    await h.call('POST', `/api/dispatches/${d.dispatchId}/stop`);
  });
});

describe('with the worker in its own process', () => {
  let h: Harness;
  let worker: ChildProcess | undefined;
  beforeAll(async () => {
    h = await startHarness({ env: { ...world.env, TOKEN_REFRESH_MARGIN_SECONDS: '8', REFRESH_JITTER_MAX_SECONDS: '0.5' }, worker: false });
  });
  afterAll(async () => {
    worker?.kill('SIGKILL');
    await h?.close();
  });

  /** Runs the real service entry point as a worker-only process for this harness's task queue. */
  async function startWorkerProcess(): Promise<ChildProcess> {
    const c = h.core.config;
    // One node process (tsx as a loader, not its CLI): SIGKILL must kill the worker itself, not a
    // launcher that would leave it orphaned.
    const child = spawn(process.execPath, ['--import', 'tsx', join(__dirname, '../../bin/repo-connect.ts')], {
      cwd: join(__dirname, '../..'),
      env: {
        PATH: process.env.PATH,
        NODE_ENV: 'test',
        ROLE: 'worker',
        LOG_LEVEL: 'info',
        DATABASE_URL: c.databaseUrl,
        TEMPORAL_ADDRESS: c.temporal.address,
        TEMPORAL_TASK_QUEUE: c.temporal.taskQueue,
        ADMIN_API_TOKEN: c.adminApiToken,
        SECRETS_KEY: c.secretsKeys[0].toString('base64'),
        WORKER_METRICS_PORT: String(await freePort()),
        TOKEN_REFRESH_MARGIN_SECONDS: String(c.tokenRefreshMarginSeconds),
        ...world.env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr!.on('data', (b: Buffer) => (out += b.toString()));
    await eventually(async () => out.includes('worker running') || child.exitCode !== null, 60_000, 'worker process start');
    if (child.exitCode !== null) throw new Error(`worker exited: ${out}`);
    return child;
  }

  it('still refreshes on time after the worker is killed mid-sleep and a new one starts', async () => {
    world.gh.tokenLifetimeSeconds = 25;
    const rig = await githubRig(h, world, { repos: 1 });
    worker = await startWorkerProcess();
    const d = await dispatchTo(h, containers, rig.rigId, 'killed');
    const first = await containers.waitForPush(d.container, (p) => p.generation === 1, 30_000);
    await new Promise((r) => setTimeout(r, 2000)); // the mint activity has reported; the workflow sleeps

    worker.kill('SIGKILL'); // no graceful shutdown: the process just dies while the workflow sleeps
    await new Promise((r) => worker!.once('exit', r));
    await new Promise((r) => setTimeout(r, 2000));
    worker = await startWorkerProcess();

    const second = await containers.waitForPush(d.container, (p) => p.generation === 2, 30_000);
    expect(second.receivedAt).toBeLessThan(Date.parse(first.expires_at!)); // before the old token expired
    expect(world.gh.isTokenLive(second.token, rig.repo.full_name, 'write')).toBe(true);
    await h.call('POST', `/api/dispatches/${d.dispatchId}/stop`);
    await eventually(async () => (await h.call<Status>('GET', `/api/dispatches/${d.dispatchId}`)).body.status === 'stopped', 20_000);
  }, 180_000); // two worker processes start here, each bundling the workflow code
});
