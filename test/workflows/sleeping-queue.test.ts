// Long waits are slept on the main task queue, whose worker keeps few runs in memory: the run that
// minted the first token waits there without continuing as new, wakes (rebuilt from a short history
// once evicted), refreshes, answers pulls and stops as before. Short waits move to the hot task queue,
// whose worker keeps its runs cached, and back. Lifetimes are seconds long, and so is the threshold.
import { FakeContainerHost } from '../fakes/container';
import { eventually, startHarness, type Harness } from '../helpers/harness';
import { dispatchTo, githubRig, githubWorld, pull, runsOf, type GithubWorld } from '../helpers/scenario';
import { LEASE_CHANNEL } from '../../lib/lease-store';

const LIFETIME = 12;
const MARGIN = 3;

let world: GithubWorld;
let h: Harness;
let containers: FakeContainerHost;

beforeAll(async () => {
  world = await githubWorld({ tokenLifetimeSeconds: LIFETIME });
  containers = await FakeContainerHost.start();
  // Refreshes come 8-9 s apart: above the 5 s threshold, so every wait is slept on the main queue;
  // its worker keeps one run, so the test's second dispatch evicts the first.
  h = await startHarness({
    env: {
      ...world.env,
      TOKEN_REFRESH_MARGIN_SECONDS: String(MARGIN),
      REFRESH_JITTER_MAX_SECONDS: '0.5',
      WORKER_SLEEPING_AFTER_SECONDS: '5',
      WORKER_SLEEPING_CACHED_WORKFLOWS: '1',
    },
  });
});

afterAll(async () => {
  await h?.close();
  await containers?.close();
  await world?.gh.close();
});

/** Task queue of each run of `workflowId`, oldest first, and how each ended. */
async function runs(workflowId: string): Promise<Array<{ taskQueue: string; status: string }>> {
  return (await runsOf(h, workflowId)).map(({ taskQueue, status }) => ({ taskQueue, status }));
}

it('sleeps long waits on the main task queue from the first token on, and keeps refreshing, answering pulls and stopping from there', async () => {
  const rig = await githubRig(h, world);
  const d = await dispatchTo(h, containers, rig.rigId, 'sleeper');
  const other = await dispatchTo(h, containers, rig.rigId, 'sleeper-2');

  // The first run mints and waits where it started: no continue-as-new at start.
  await containers.waitForPush(d.container, (p) => p.generation === 1, 20_000);
  await containers.waitForPush(other.container, (p) => p.generation === 1, 20_000);
  await new Promise((r) => setTimeout(r, 1500)); // a continue-as-new would have happened by now
  expect(await runs(d.workflowId)).toEqual([{ taskQueue: h.taskQueue, status: 'RUNNING' }]);

  // Two refreshes, each ending its run after the wait that follows is decided (so the next wake replays little).
  for (const g of [2, 3]) {
    const p = await containers.waitForPush(d.container, (x) => x.generation === g, 30_000);
    expect(world.gh.isTokenLive(p.token, rig.repo.full_name, 'write')).toBe(true);
  }
  await containers.waitForPush(other.container, (x) => x.generation === 2, 30_000);
  const after = await eventually(
    async () => {
      const all = await runs(d.workflowId);
      return all.filter((r) => r.status === 'CONTINUED_AS_NEW').length >= 2 && all;
    },
    10_000,
    'two continued runs',
  );
  expect(after.every((r) => r.taskQueue === h.taskQueue)).toBe(true);

  // A pull of a stale lease reaches the sleeping run (evicted by the other dispatch's) through its
  // update and gets a newer token.
  const before = containers.latest(d.container)!.generation;
  await h.core.db.$executeRaw`
    UPDATE token_leases SET created_at = now() - interval '1 hour', expires_at = now() + interval '1 second'
    WHERE dispatch_id = ${d.dispatchId}::uuid`;
  await h.core.db.$executeRaw`SELECT pg_notify(${LEASE_CHANNEL}, ${d.dispatchId})`;
  await new Promise((r) => setTimeout(r, 200)); // let the API hear it
  const fresh = await pull(h, rig.rigId, d.containerToken);
  expect(fresh.status).toBe(200);
  expect(fresh.body.generation).toBeGreaterThan(before);
  expect(world.gh.isTokenLive(fresh.body.token, rig.repo.full_name, 'write')).toBe(true);

  // Stop: answered by the sleeping run at once, tokens revoked.
  await stopAndCheck(d);
  await h.call('POST', `/api/dispatches/${other.dispatchId}/stop`);
});

it('waits out short waits on the hot task queue, in one cached run, and moves back when the waits grow long', async () => {
  const rig = await githubRig(h, world);
  const hot = h.core.config.temporal.hotTaskQueue;
  // 7 s tokens refresh 3.5-4 s after each mint: under the 5 s threshold.
  world.gh.tokenLifetimeSeconds = 7;
  try {
    const d = await dispatchTo(h, containers, rig.rigId, 'hot');
    for (const g of [1, 2, 3]) await containers.waitForPush(d.container, (x) => x.generation === g, 30_000);
    // The run that minted the first token continued onto the hot queue, and one run there refreshed twice.
    expect(await runs(d.workflowId)).toEqual([
      { taskQueue: h.taskQueue, status: 'CONTINUED_AS_NEW' },
      { taskQueue: hot, status: 'RUNNING' },
    ]);

    // Long-lived tokens again: the next wait is long, so the hot run continues onto the main queue.
    world.gh.tokenLifetimeSeconds = LIFETIME;
    const g = containers.latest(d.container)!.generation;
    await containers.waitForPush(d.container, (x) => x.generation === g + 1, 30_000);
    const back = await eventually(
      async () => {
        const all = await runs(d.workflowId);
        return all.length === 3 && all;
      },
      10_000,
      'a run on the main queue',
    );
    expect(back.map((r) => r.taskQueue)).toEqual([h.taskQueue, hot, h.taskQueue]);
    expect(back[2].status).toBe('RUNNING');
    await stopAndCheck(d);
  } finally {
    world.gh.tokenLifetimeSeconds = LIFETIME;
  }
});

/** Stops `d` and checks it ends `stopped` with its last token revoked. */
async function stopAndCheck(d: { dispatchId: string; container: string }): Promise<void> {
  const stopped = await h.call('POST', `/api/dispatches/${d.dispatchId}/stop`);
  expect(stopped.status).toBeLessThan(300);
  const status = await eventually(
    async () => {
      const s = await h.call<{ status: string }>('GET', `/api/dispatches/${d.dispatchId}`);
      return s.body.status === 'stopped' && s.body;
    },
    20_000,
    'the stop',
  );
  expect(status.status).toBe('stopped');
  expect(world.gh.isTokenLive(containers.latest(d.container)!.token)).toBe(false);
}
