// Long waits are slept on the sleeping task queue, whose worker keeps few runs in memory: the run
// that minted continues as new there, wakes there (rebuilt from a short history once evicted),
// refreshes, answers pulls and stops as before. Lifetimes are seconds long, and so is the threshold.
import { FakeContainerHost } from '../fakes/container';
import { eventually, startHarness, type Harness } from '../helpers/harness';
import { dispatchTo, githubRig, githubWorld, pull, type GithubWorld } from '../helpers/scenario';
import { LEASE_CHANNEL } from '../../lib/lease-store';

const LIFETIME = 12;
const MARGIN = 3;

let world: GithubWorld;
let h: Harness;
let containers: FakeContainerHost;

beforeAll(async () => {
  world = await githubWorld({ tokenLifetimeSeconds: LIFETIME });
  containers = await FakeContainerHost.start();
  // Refreshes come 8-9 s apart: above the 5 s threshold, so every wait is slept on the sleeping queue;
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
  const out: Array<{ taskQueue: string; status: string; start: number }> = [];
  for await (const wf of h.core.temporal.workflow.list({ query: `WorkflowId = "${workflowId}"` }))
    out.push({ taskQueue: wf.taskQueue, status: wf.status.name, start: wf.startTime.getTime() });
  return out.sort((a, b) => a.start - b.start).map(({ taskQueue, status }) => ({ taskQueue, status }));
}

it('sleeps long waits on the sleeping task queue and keeps refreshing, answering pulls and stopping from there', async () => {
  const rig = await githubRig(h, world);
  const d = await dispatchTo(h, containers, rig.rigId, 'sleeper');
  const other = await dispatchTo(h, containers, rig.rigId, 'sleeper-2');
  const sleeping = h.core.config.temporal.sleepingTaskQueue;

  // The first run mints on the main queue, then continues on the sleeping queue to wait.
  await containers.waitForPush(d.container, (p) => p.generation === 1, 20_000);
  await eventually(
    async () => (await runs(d.workflowId)).some((r) => r.taskQueue === sleeping && r.status === 'RUNNING'),
    20_000,
    'a sleeping run',
  );
  expect((await runs(d.workflowId))[0]).toEqual({ taskQueue: h.taskQueue, status: 'CONTINUED_AS_NEW' });

  // Two refreshes happen on the sleeping queue, each ending its run (so the next wake replays little).
  for (const g of [2, 3]) {
    const p = await containers.waitForPush(d.container, (x) => x.generation === g, 30_000);
    expect(world.gh.isTokenLive(p.token, rig.repo.full_name, 'write')).toBe(true);
  }
  await containers.waitForPush(other.container, (x) => x.generation === 2, 30_000);
  // The run that pushed generation 3 continues as new once its workflow task completes.
  const after = await eventually(
    async () => {
      const all = await runs(d.workflowId);
      return all.filter((r) => r.status === 'CONTINUED_AS_NEW').length >= 3 && all;
    },
    10_000,
    'three continued runs',
  );
  expect(after.slice(1).every((r) => r.taskQueue === sleeping)).toBe(true);

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

  // Stop: answered from the sleeping queue at once, tokens revoked.
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
  await h.call('POST', `/api/dispatches/${other.dispatchId}/stop`);
});
