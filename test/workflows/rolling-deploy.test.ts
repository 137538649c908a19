// A rolling deploy with Worker Versioning on the dev server: dispatches started on build A keep
// refreshing on time (no container ever holds an expired token) while build B's workers start, the
// deployment's current version moves to B and A's workers stop; the runs auto-upgrade to B. Each
// build runs every task queue as bin/repo-connect.ts does, and every wait here is long enough to be
// slept on the main queue's small cache, so each refresh continues as new across the deploy.
import { randomUUID } from 'node:crypto';
import { temporal } from '@temporalio/proto';
import type { Worker } from '@temporalio/worker';
import { createTokenWorkers, NativeConnection } from '../../activities/worker';
import { adoptDeploymentIfUnset } from '../../activities/worker-deployment';
import { FakeContainerHost } from '../fakes/container';
import { eventually, startHarness, type Harness } from '../helpers/harness';
import { dispatchTo, githubRig, githubWorld, runsOf, type Dispatched, type GithubWorld } from '../helpers/scenario';

const DEPLOYMENT = `rc-test-${randomUUID().slice(0, 8)}`;
const AUTO_UPGRADE = temporal.api.enums.v1.VersioningBehavior.VERSIONING_BEHAVIOR_AUTO_UPGRADE;

let world: GithubWorld;
let containers: FakeContainerHost;
let h: Harness;

beforeAll(async () => {
  world = await githubWorld({ tokenLifetimeSeconds: 8 });
  containers = await FakeContainerHost.start();
  // Refreshes come 4.5-5 s apart: above the 2 s threshold, so each wait is slept on the main queue.
  h = await startHarness({
    env: { ...world.env, TOKEN_REFRESH_MARGIN_SECONDS: '3', REFRESH_JITTER_MAX_SECONDS: '0.5', WORKER_SLEEPING_AFTER_SECONDS: '2' },
    worker: false,
  });
});

afterAll(async () => {
  await h?.close();
  await containers?.close();
  await world?.gh.close();
});

/** Versioned workers of `buildId` on the harness's task queues, as bin/repo-connect.ts runs them, running until `stop()`. */
async function startBuild(buildId: string): Promise<{ workers: Worker[]; stop(): Promise<void> }> {
  const connection = await NativeConnection.connect({ address: h.core.config.temporal.address });
  const workers = await createTokenWorkers({
    core: h.core,
    connection,
    workflowBundle: { codePath: process.env.TEST_WORKFLOW_BUNDLE! },
    deployment: { config: { name: DEPLOYMENT, versioning: true }, buildId },
  });
  const running = Promise.all(workers.map((w) => w.run()));
  return {
    workers,
    async stop() {
      for (const w of workers) w.shutdown();
      await running;
      await connection.close();
    },
  };
}

/** `temporal worker deployment set-current-version`, retried until the server has seen the build's pollers. */
async function setCurrentVersion(buildId: string): Promise<void> {
  const { namespace } = h.core.config.temporal;
  await eventually(
    async () => {
      await h.core.temporalConnection.workflowService.setWorkerDeploymentCurrentVersion({ namespace, deploymentName: DEPLOYMENT, buildId });
      return true;
    },
    20_000,
    `current version ${buildId}`,
  );
}

/**
 * The build ids whose workers completed the workflow's tasks over all its runs, in order, the task
 * queues its runs were on, and the versioning behaviour of its current run.
 */
async function buildsOf(workflowId: string): Promise<{ builds: string[]; queues: string[]; behavior: unknown; current: unknown }> {
  const runs = await runsOf(h, workflowId);
  const builds: string[] = [];
  for (const run of runs) {
    for (const e of run.history.events ?? []) {
      const b = e.workflowTaskCompletedEventAttributes?.deploymentVersion?.buildId;
      if (b && builds.at(-1) !== b) builds.push(b);
    }
  }
  const info = (await h.core.temporal.workflow.getHandle(workflowId).describe()).raw.workflowExecutionInfo?.versioningInfo;
  const queues = [...new Set(runs.map((r) => r.taskQueue))];
  return { builds, queues, behavior: info?.behavior, current: info?.deploymentVersion?.buildId };
}

it('dispatches started on build A keep refreshing on time while build B replaces it, and move to B', async () => {
  const a = await startBuild('A');
  // The first versioned build of a deployment makes itself current (the service does so at boot).
  const adopt = (buildId: string) =>
    adoptDeploymentIfUnset({
      service: h.core.temporalConnection.workflowService,
      namespace: h.core.config.temporal.namespace,
      deploymentName: DEPLOYMENT,
      buildId,
    });
  expect(await adopt('A')).toBe('adopted');
  const ds: Dispatched[] = [];
  for (let i = 0; i < 3; i++) {
    const rig = await githubRig(h, world, { repos: 1 });
    ds.push(await dispatchTo(h, containers, rig.rigId, `deploy-${i}`));
  }
  for (const d of ds) await containers.waitForPush(d.container, (p) => p.generation === 1, 20_000);

  // The deploy: B's workers start beside A's, B becomes current, A's workers stop.
  const b = await startBuild('B');
  expect(await adopt('B')).toBe('already_set'); // a later build waits for the operator
  await setCurrentVersion('B');
  await a.stop();
  const at = Object.fromEntries(ds.map((d) => [d.dispatchId, containers.latest(d.container)!.generation]));
  for (const d of ds) await containers.waitForPush(d.container, (p) => p.generation >= at[d.dispatchId] + 2, 30_000);

  // A dispatch started after the switch runs on B from its first task.
  const rig = await githubRig(h, world, { repos: 1 });
  const late = await dispatchTo(h, containers, rig.rigId, 'deploy-late');
  await containers.waitForPush(late.container, (p) => p.generation === 1, 20_000);

  for (const d of ds) {
    const pushes = containers.pushes(d.container);
    // Every new token arrived while the one before it was still valid: no gap for git.
    for (let i = 1; i < pushes.length; i++) expect(pushes[i].receivedAt).toBeLessThan(Date.parse(pushes[i - 1].expires_at!));
    expect(world.gh.isTokenLive(pushes.at(-1)!.token)).toBe(true);
    // The run's versioning read empty once in CI, the machine loaded (behavior unspecified, no
    // version) though B had completed its tasks: it must settle on B within seconds.
    const settled = await eventually(
      async () => {
        const b = await buildsOf(d.workflowId);
        return b.current !== undefined ? b : null;
      },
      10_000,
      'the current run versioned',
    );
    expect(settled).toEqual({
      builds: ['A', 'B'],
      queues: [h.taskQueue],
      behavior: AUTO_UPGRADE,
      current: 'B',
    });
  }
  // (The first push happens inside the first workflow task, before that task is recorded as completed.)
  expect(await eventually(async () => (await buildsOf(late.workflowId)).builds.join() || null, 10_000, 'first task')).toBe('B');

  for (const d of [...ds, late]) await h.call('POST', `/api/dispatches/${d.dispatchId}/stop`);
  for (const d of [...ds, late]) await h.core.temporal.workflow.getHandle(d.workflowId).result();

  // An operator routes the deployment to unversioned workers on purpose (to turn versioning off, say):
  // a versioned build starting later leaves that choice alone instead of making itself current.
  const { namespace } = h.core.config.temporal;
  await h.core.temporalConnection.workflowService.setWorkerDeploymentCurrentVersion({ namespace, deploymentName: DEPLOYMENT, buildId: '' });
  const routing = async () =>
    (await h.core.temporalConnection.workflowService.describeWorkerDeployment({ namespace, deploymentName: DEPLOYMENT }))
      .workerDeploymentInfo?.routingConfig;
  expect((await routing())?.currentDeploymentVersion?.buildId ?? '').toBe('');
  expect(
    await adoptDeploymentIfUnset({
      service: h.core.temporalConnection.workflowService,
      namespace,
      deploymentName: DEPLOYMENT,
      buildId: 'B',
      timeoutMs: 5000,
    }),
  ).toBe('already_set');
  expect((await routing())?.currentDeploymentVersion?.buildId ?? '').toBe('');
  await b.stop();
}, 120_000);
