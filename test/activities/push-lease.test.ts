// Pushes to the container as the worker runs them, inside the SDK's MockActivityEnvironment: what
// pushLease returns or throws for each answer of the container (the workflow's retry policy acts
// on a throw), what mintLease's own push reports, and what a cancel does to a push under way.
import { ApplicationFailure } from '@temporalio/common';
import type { ContainerMode } from '../fakes/container';
import { dispatchState, githubRig, mintInput, newDispatch, runActivity, startActivityWorld, type ActivityWorld } from './activity-world';

let w: ActivityWorld;
beforeAll(async () => {
  w = await startActivityWorld();
});
afterAll(() => w?.close());

/** A GitHub dispatch holding its first lease (not pushed yet). */
async function mintedDispatch(opts: { unknownContainer?: boolean } = {}) {
  const rig = await githubRig(w);
  const d = await newDispatch(w, rig.rigId, opts);
  const lease = await runActivity(w.env(), w.activities.mintLease, mintInput(d.dispatchId));
  return { ...d, lease, repo: rig.repo };
}

it('pushes the current lease: the container gets a token that works on the repository, and the push is recorded', async () => {
  const { dispatchId, container, lease, repo } = await mintedDispatch();

  const result = await runActivity(w.env(), w.activities.pushLease, { dispatchId });
  expect(result).toEqual({ outcome: 'acknowledged', generation: 1, expiresAt: lease.expiresAt });
  const pushed = w.containers.latest(container)!;
  expect(pushed).toMatchObject({ dispatch_id: dispatchId, generation: 1, username: 'x-access-token', expires_at: lease.expiresAt });
  expect(w.github.gh.isTokenLive(pushed.token, repo.full_name, 'write')).toBe(true);
  expect((await dispatchState(w, dispatchId)).events).toEqual(['minted', 'pushed']);
});

it.each([
  [404, 'a container the host never had'],
  [410, 'a container that is gone'],
])('returns gone when the container answers %i (%s), and records the failed push', async (status) => {
  const { dispatchId, container } = await mintedDispatch({ unknownContainer: status === 404 });
  if (status === 410) w.containers.setMode(container, 'gone');

  expect(await runActivity(w.env(), w.activities.pushLease, { dispatchId })).toMatchObject({ outcome: 'gone', generation: 1 });
  const { events, details } = await dispatchState(w, dispatchId);
  expect(events).toEqual(['minted', 'push_failed']);
  expect(details[1].detail).toBe(`container answered ${status}`);
});

it.each([
  ['error', 'container answered 500'],
  ['drop', 'container unreachable (ECONNRESET)'],
] as Array<[ContainerMode, string]>)(
  'throws when the container fails (%s), so the workflow retries the push; a retry that gets through is acknowledged',
  async (mode, detail) => {
    const { dispatchId, container } = await mintedDispatch();
    w.containers.setMode(container, mode);

    const err: unknown = await runActivity(w.env(), w.activities.pushLease, { dispatchId }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect(err).not.toBeInstanceOf(ApplicationFailure); // a plain error: retryable under the activity's retry policy
    expect((err as Error).message).toBe(`push to container failed: ${detail}`);

    w.containers.setMode(container, 'ok');
    expect(await runActivity(w.env({ attempt: 2 }), w.activities.pushLease, { dispatchId })).toMatchObject({ outcome: 'acknowledged' });
    expect((await dispatchState(w, dispatchId)).events).toEqual(['minted', 'push_failed', 'pushed']);
  },
);

it('answers no_lease for a dispatch that has no token yet, without calling the container', async () => {
  const { rigId } = await githubRig(w);
  const { dispatchId, container } = await newDispatch(w, rigId);
  expect(await runActivity(w.env(), w.activities.pushLease, { dispatchId })).toEqual({
    outcome: 'no_lease',
    generation: 0,
    expiresAt: null,
  });
  expect(w.containers.pushes(container)).toHaveLength(0);
});

it.each([
  ['ok', 'acknowledged'],
  ['gone', 'gone'],
  ['error', undefined],
] as Array<[ContainerMode, string | undefined]>)(
  "mintLease's own push: a container answering %s makes the lease say pushed=%s",
  async (mode, pushed) => {
    const { rigId } = await githubRig(w);
    const { dispatchId, container } = await newDispatch(w, rigId);
    w.containers.setMode(container, mode);
    // A failed push does not fail the mint: the new lease is stored, and the workflow's push activity retries.
    const lease = await runActivity(w.env({ isLocal: true }), w.activities.mintLease, mintInput(dispatchId, { push: true }));
    expect(lease).toMatchObject({ generation: 1, reused: false });
    expect(lease.pushed).toBe(pushed);
  },
);

// What the code does today, pinned so a change to it is a decision: pushToContainer takes no abort
// signal and pushLease does not heartbeat, so a cancel neither reaches nor stops a push under way.
it('a cancel during a push does not abort it: the container still gets the token and the push is recorded as acknowledged', async () => {
  const { dispatchId, container } = await mintedDispatch();
  w.containers.setDelay(container, 1500);
  const env = w.env();

  const running = runActivity(env, w.activities.pushLease, { dispatchId });
  await w.containers.waitForPush(container, () => true, 5000); // the request is at the container
  env.cancel();
  expect(env.context.cancellationSignal.aborted).toBe(true);

  expect(await running).toMatchObject({ outcome: 'acknowledged', generation: 1 });
  expect(w.containers.pushes(container)).toHaveLength(1);
  expect((await dispatchState(w, dispatchId)).events).toEqual(['minted', 'pushed']);
});
