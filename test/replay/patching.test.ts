// How to change the workflow without breaking running dispatches (README "Changing the workflow"),
// shown on a demo change: the loop waits 10 ms before each mint. Unguarded, the change breaks the
// recorded histories; behind `patched()`, they replay, a new run takes the new path (its history has
// the patch marker), and a running dispatch takes it from its next mint once a new worker replaces
// the old one. The demo bundles are built here only (test/replay/patch-demo/), never for the worker.
import { Worker, type ReplayWorkerOptions, type WorkflowBundle } from '@temporalio/worker';
import type { temporal } from '@temporalio/proto';
import { FakeContainerHost } from '../fakes/container';
import { startHarness, type Harness } from '../helpers/harness';
import { dispatchTo, githubRig, githubWorld, type GithubWorld } from '../helpers/scenario';
import { loadCorpus } from './corpus';
import { DEMO_PATCH_ID, demoBundle } from './patch-demo/variant-bundles';

type History = temporal.api.history.v1.IHistory;
const runs = loadCorpus().flatMap((f) => f.runs.map((r) => ({ ...r, file: f.file })));

let guarded: WorkflowBundle;
let unguarded: WorkflowBundle;
let world: GithubWorld;
let containers: FakeContainerHost;
let h: Harness;

beforeAll(async () => {
  [guarded, unguarded] = await Promise.all([demoBundle({ guarded: true }), demoBundle({ guarded: false })]);
  world = await githubWorld({ tokenLifetimeSeconds: 8 });
  containers = await FakeContainerHost.start();
  // Every wait on the main task queue (none moves to the hot one), so one run's history holds both mints.
  h = await startHarness({
    env: { ...world.env, TOKEN_REFRESH_MARGIN_SECONDS: '3', REFRESH_JITTER_MAX_SECONDS: '0.5', WORKER_SLEEPING_AFTER_SECONDS: '0' },
    worker: false,
  });
}, 120_000);

afterAll(async () => {
  await h?.close();
  await containers?.close();
  await world?.gh.close();
});

/** Replays `histories` on `bundle`; the error names of those that failed. */
async function replayFailures(
  bundle: ReplayWorkerOptions['workflowBundle'],
  histories: Array<{ workflowId: string; history: History }>,
): Promise<string[]> {
  const failed: string[] = [];
  for await (const r of Worker.runReplayHistories({ workflowBundle: bundle }, histories)) if (r.error) failed.push(r.error.name);
  return failed;
}

/** The patch ids a history's markers record, and the durations (ms) of its timers. */
function commandsOf(history: History) {
  const events = history.events ?? [];
  const patchId = (e: (typeof events)[number]) =>
    e.markerRecordedEventAttributes?.markerName === 'core_patch'
      ? (JSON.parse(Buffer.from(e.markerRecordedEventAttributes.details!['patch-data'].payloads![0].data!).toString()).id as string)
      : undefined;
  // Only the demo's patch: the workflow's own patches (e.g. 'credential-scope-attribute') are recorded too.
  const patches = events.map(patchId).filter((id) => id === DEMO_PATCH_ID);
  const timers = events.map((e) => e.timerStartedEventAttributes?.startToFireTimeout).filter(Boolean);
  const mintEvents = events.filter((e) => e.markerRecordedEventAttributes?.markerName === 'core_local_activity');
  const mints = mintEvents.length;
  // A pull's mint runs in its update handler, not in the loop the demo change edits ("… (pull)").
  const summary = (e: (typeof events)[number]) => Buffer.from(e.userMetadata?.summary?.data ?? []).toString();
  const loopMints = mintEvents.filter((e) => !summary(e).includes('(pull)')).length;
  return {
    patches,
    demoPatchAt: events.findIndex((e) => patchId(e) === DEMO_PATCH_ID),
    shortTimers: timers.filter((t) => Number(t!.seconds ?? 0) === 0 && (t!.nanos ?? 0) === 10_000_000).length,
    mints,
    loopMints,
    events,
  };
}

/** Runs a dispatch until its second token reached the container, stops it and returns its history. */
async function dispatchUntilGeneration2(name: string, between?: () => Promise<void>): Promise<History> {
  const rig = await githubRig(h, world, { repos: 1 });
  const d = await dispatchTo(h, containers, rig.rigId, name);
  await containers.waitForPush(d.container, (p) => p.generation === 1, 20_000);
  await between?.();
  await containers.waitForPush(d.container, (p) => p.generation === 2, 20_000);
  await h.call('POST', `/api/dispatches/${d.dispatchId}/stop`);
  const handle = h.core.temporal.workflow.getHandle(d.workflowId);
  await handle.result();
  return handle.fetchHistory();
}

it('the change without patched() breaks every recorded history that mints in the loop', async () => {
  // A run that does not mint in its loop has nothing for the change to break: one stopped early, one
  // that continued onto another task queue and only waited there, or one whose only mint was a pull's.
  const minting = runs.filter((r) => commandsOf(r.history).loopMints > 0);
  expect(minting.length).toBeGreaterThan(runs.length / 2);
  const failed = await replayFailures(unguarded, minting);
  expect(failed).toHaveLength(minting.length);
  expect(new Set(failed)).toEqual(new Set(['DeterminismViolationError']));
}, 120_000);

it('behind patched(), every recorded history replays', async () => {
  expect(await replayFailures(guarded, runs)).toEqual([]);
}, 120_000);

it('a new run takes the new path: the patch marker, then the 10 ms wait before each mint; the old code cannot replay it', async () => {
  await h.startWorker(guarded);
  try {
    const history = await dispatchUntilGeneration2('patch-new');
    const c = commandsOf(history);
    expect(c.patches).toEqual([DEMO_PATCH_ID]); // recorded once, at the first patched() call
    expect(c.shortTimers).toBe(c.mints); // the wait before every mint
    expect(await replayFailures(guarded, [{ workflowId: 'new', history }])).toEqual([]);
    // Why a deploy of patched code cannot simply be rolled back once new runs exist:
    expect(await replayFailures({ codePath: process.env.TEST_WORKFLOW_BUNDLE! }, [{ workflowId: 'new', history }])).toEqual([
      'DeterminismViolationError',
    ]);
  } finally {
    await h.stopWorker();
  }
}, 120_000);

it('a dispatch started on the old code takes the new path from its next mint once the new worker replaces the old one', async () => {
  await h.startWorker();
  try {
    const history = await dispatchUntilGeneration2('patch-upgrade', async () => {
      await h.stopWorker(); // the deploy: old worker gone, the dispatch sleeps in Temporal
      await h.startWorker(guarded);
    });
    const c = commandsOf(history);
    const first = c.events.findIndex((e) => e.markerRecordedEventAttributes?.markerName === 'core_local_activity');
    expect(c.patches).toEqual([DEMO_PATCH_ID]);
    expect(c.demoPatchAt).toBeGreaterThan(first); // the first mint ran on the old path, without the wait
    expect(c.shortTimers).toBe(c.mints - 1);
    expect(await replayFailures(guarded, [{ workflowId: 'upgraded', history }])).toEqual([]);
  } finally {
    await h.stopWorker();
  }
}, 120_000);
