// A running dispatch whose rig changes credential source, and stops that must not wait: only
// GitHub tokens are ever sent to GitHub's revocation endpoint, a replaced GitHub token nobody
// holds any more is revoked at once, and a stop interrupts a push that is still being retried.
import { FakeContainerHost } from '../fakes/container';
import { eventually, newOwner, startHarness, type Harness } from '../helpers/harness';
import { dispatchTo, githubRig, githubWorld, pull, type GithubWorld } from '../helpers/scenario';

let world: GithubWorld;
let containers: FakeContainerHost;
let h: Harness;

beforeAll(async () => {
  world = await githubWorld({ tokenLifetimeSeconds: 120 });
  containers = await FakeContainerHost.start();
  h = await startHarness({ env: { ...world.env, TOKEN_REFRESH_MARGIN_SECONDS: '10' } });
});
afterAll(async () => {
  await h?.close();
  await containers?.close();
  await world?.gh.close();
});

const revokeCalls = () => world.gh.requests.filter((r) => r.method === 'DELETE' && r.path === '/installation/token').length;
const status = async (id: string) => (await h.call<{ status: string }>('GET', `/api/dispatches/${id}`)).body.status;

it('revokes the replaced GitHub token at once when the rig falls back to a town token, and sends only GitHub tokens to GitHub', async () => {
  const rig = await githubRig(h, world, { repos: 1 });
  const host = new URL(rig.repo.clone_url as string).host;
  await h.call('PUT', `/api/towns/${rig.townId}/git-auth`, { tokens: [{ host, token: 'town-static-secret' }] });
  const d = await dispatchTo(h, containers, rig.rigId, 'switch-to-town');
  const github = await containers.waitForPush(d.container, (p) => p.generation === 1);

  expect((await h.call('PATCH', `/api/rigs/${rig.rigId}`, { platform_integration_id: null })).status).toBe(200);
  const town = await containers.waitForPush(d.container, (p) => p.generation === 2, 10_000);
  expect(town.token).toBe('town-static-secret');
  expect(world.gh.isTokenLive(github.token)).toBe(false); // nobody may hold it any more

  const before = revokeCalls();
  await h.call('POST', `/api/dispatches/${d.dispatchId}/stop`);
  await eventually(async () => (await status(d.dispatchId)) === 'stopped');
  expect(revokeCalls()).toBe(before); // the town token never went to GitHub
});

it('withdraws the GitHub token when the rig is disconnected with no town token: revoked, and pulls answer the error', async () => {
  const rig = await githubRig(h, world, { repos: 1 });
  const d = await dispatchTo(h, containers, rig.rigId, 'disconnect-no-fallback');
  const github = await containers.waitForPush(d.container, (p) => p.generation === 1);
  expect((await pull(h, rig.rigId, d.containerToken)).body.token).toBe(github.token);

  expect((await h.call('PATCH', `/api/rigs/${rig.rigId}`, { platform_integration_id: null })).status).toBe(200);
  await eventually(async () => (await status(d.dispatchId)) === 'credential_error', 10_000);
  // The token reached a repository the rig no longer has: revoked, and no pull hands it out.
  await eventually(async () => world.gh.isTokenRevoked(github.token), 5000, 'the token revoked');
  const pulled = await eventually(async () => {
    const r = await pull(h, rig.rigId, d.containerToken);
    return r.status === 200 ? null : r;
  }, 5000);
  expect(pulled.status).toBe(502);
  expect(pulled.body).toMatchObject({ error: { code: 'no_credentials' } });
  expect(JSON.stringify(pulled.body)).not.toContain(github.token);
  // Pulls through the error ask the workflow, which has nothing to do until its recheck: none of
  // them adds to the run's history.
  const updates = async () =>
    ((await h.core.temporal.workflow.getHandle(d.workflowId).fetchHistory()).events ?? []).filter(
      (e) => e.workflowExecutionUpdateAcceptedEventAttributes,
    ).length;
  const before = await updates();
  for (let i = 0; i < 5; i++) expect((await pull(h, rig.rigId, d.containerToken)).status).toBe(502);
  expect(await updates()).toBe(before);

  await h.call('POST', `/api/dispatches/${d.dispatchId}/stop`);
  await eventually(async () => (await status(d.dispatchId)) === 'stopped');
});

it('a withdrawn token GitHub failed to revoke is revoked by the worker once GitHub answers again', async () => {
  const rig = await githubRig(h, world, { repos: 1 });
  const d = await dispatchTo(h, containers, rig.rigId, 'withdraw-github-down');
  const github = await containers.waitForPush(d.container, (p) => p.generation === 1);

  // The withdrawal tries once (inside the mint's time limit); GitHub fails it.
  world.gh.failNext(1, { status: 502, match: (m, path) => m === 'DELETE' && path === '/installation/token' });
  expect((await h.call('PATCH', `/api/rigs/${rig.rigId}`, { platform_integration_id: null })).status).toBe(200);
  await eventually(async () => (await status(d.dispatchId)) === 'credential_error', 10_000);
  const kept = await eventually(
    async () => (await h.core.db.pendingRevocation.findFirst({ where: { dispatchId: d.dispatchId } })) ?? undefined,
    5000,
    'the failed revocation kept',
  );
  expect(kept.tokenEnc).not.toContain(github.token);
  expect(world.gh.isTokenLive(github.token)).toBe(true);
  // The worker's sweep (every 5 s, the first retry 5 s after the failure) revokes it.
  await eventually(async () => world.gh.isTokenRevoked(github.token), 20_000, 'the token revoked by a retry');
  await eventually(async () => (await h.core.db.pendingRevocation.count({ where: { dispatchId: d.dispatchId } })) === 0, 5000);

  await h.call('POST', `/api/dispatches/${d.dispatchId}/stop`);
  await eventually(async () => (await status(d.dispatchId)) === 'stopped');
});

it('at stop after switching from a town token to GitHub, revokes only the GitHub token', async () => {
  const rig = await githubRig(h, world, { repos: 1 });
  const host = new URL(rig.repo.clone_url as string).host;
  await h.call('PUT', `/api/towns/${rig.townId}/git-auth`, { tokens: [{ host, token: 'town-static-other' }] });
  await h.call('PATCH', `/api/rigs/${rig.rigId}`, { platform_integration_id: null });
  const d = await dispatchTo(h, containers, rig.rigId, 'switch-to-github');
  await containers.waitForPush(d.container, (p) => p.token === 'town-static-other');

  await h.call('PATCH', `/api/rigs/${rig.rigId}`, { platform_integration_id: rig.integrationId, repository_id: rig.repo.id });
  const github = await containers.waitForPush(d.container, (p) => p.generation === 2, 10_000);
  expect(world.gh.isTokenLive(github.token, rig.repo.full_name, 'write')).toBe(true);

  const before = revokeCalls();
  await h.call('POST', `/api/dispatches/${d.dispatchId}/stop`);
  await eventually(async () => (await status(d.dispatchId)) === 'stopped');
  expect(revokeCalls() - before).toBe(1);
  expect(world.gh.isTokenLive(github.token)).toBe(false);
});

it('stops at once while a push to an unreachable container is still being retried', async () => {
  const town = await h.call<{ id: string }>('POST', '/api/towns', { name: 'drop', owner_id: newOwner() });
  await h.call('PUT', `/api/towns/${town.body.id}/git-auth`, { tokens: [{ host: 'git.example.com', token: 'static-for-drop' }] });
  const rig = await h.call<{ id: string }>('POST', `/api/towns/${town.body.id}/rigs`, {
    name: 'd',
    git_url: 'https://git.example.com/a/b.git',
  });
  const name = 'push-dropped';
  const url = containers.add(name);
  containers.setMode(name, 'drop'); // a static token's pushes would be retried for ten minutes
  const res = await h.call<{ dispatch_id: string }>('POST', `/api/rigs/${rig.body.id}/dispatches`, { container_url: url });
  await eventually(
    async () => (await h.core.db.tokenEvent.count({ where: { dispatchId: res.body.dispatch_id, kind: 'push_failed' } })) >= 2,
    15_000,
  );

  const stopped = Date.now();
  await h.call('POST', `/api/dispatches/${res.body.dispatch_id}/stop`);
  await eventually(async () => (await status(res.body.dispatch_id)) === 'stopped', 10_000);
  expect(Date.now() - stopped).toBeLessThan(8000);
});
