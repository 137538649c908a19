// GitHub webhooks against the real service and worker: signatures, replays, and installation events
// that change an integration's status and, through its running dispatches, what containers get.
import { randomUUID } from 'node:crypto';
import { FakeContainerHost } from '../fakes/container';
import { FakeGitHub } from '../fakes/github';
import { eventually, type Harness } from '../helpers/harness';
import { dispatchTo, githubRig } from '../helpers/scenario';
import { dashboardWorld, startDashboard, WEBHOOK_SECRET, type DashboardWorld } from '../dashboard/dashboard-world';

let world: DashboardWorld;
let h: Harness;
let containers: FakeContainerHost;
let hook: string;

beforeAll(async () => {
  world = await dashboardWorld({ gitlab: false });
  containers = await FakeContainerHost.start();
  h = await startDashboard(world);
  hook = `${h.url}/webhooks/github`;
});

afterAll(async () => {
  await h?.close();
  await containers?.close();
  await world?.close();
});

const deliver = (event: string, payload: object, opts: { deliveryId?: string; badSignature?: boolean; appId?: string } = {}) =>
  FakeGitHub.deliverWebhook(hook, WEBHOOK_SECRET, event, payload, opts);

interface DispatchView {
  status: string;
  generation: number;
  last_error: { code: string } | null;
}
const dispatchOf = async (id: string) => (await h.call<DispatchView>('GET', `/api/dispatches/${id}`)).body;
const statusOf = async (integrationId: string) =>
  (await h.core.db.platformIntegration.findUniqueOrThrow({ where: { id: integrationId } })).status;

/** The dispatch's view once it waits in credential_error. */
const credentialError = (dispatchId: string) =>
  eventually(
    async () => {
      const s = await dispatchOf(dispatchId);
      return s.status === 'credential_error' ? s : null;
    },
    20_000,
    'credential_error',
  );

/** After a fix: the container gets a working token of a new generation, the dispatch is active again; then it is stopped. */
async function resumesThenStops(rig: Awaited<ReturnType<typeof githubRig>>, d: Awaited<ReturnType<typeof dispatchTo>>, timeoutMs = 20_000) {
  const push = await containers.waitForPush(d.container, (p) => p.generation >= 2, timeoutMs);
  expect(world.gh.isTokenLive(push.token, rig.repo.full_name, 'write')).toBe(true);
  expect(await dispatchOf(d.dispatchId)).toMatchObject({ status: 'active', last_error: null });
  await h.call('POST', `/api/dispatches/${d.dispatchId}/stop`);
}

/** The `installation_repositories` delivery GitHub sends when `repos` are added to or removed from an installation. */
const repositoriesChanged = (
  installationId: number,
  action: 'added' | 'removed',
  repos: Array<{ id: number; name: string; full_name: string }>,
) => {
  const listed = repos.map((r) => ({ id: r.id, name: r.name, full_name: r.full_name, private: true }));
  return deliver('installation_repositories', {
    installation: { id: installationId },
    repository_selection: 'selected',
    sender: { login: 'someone' },
    action,
    repositories_added: action === 'added' ? listed : [],
    repositories_removed: action === 'removed' ? listed : [],
  });
};

it('answers ping, and refuses unsigned or wrongly signed deliveries (401)', async () => {
  const ping = await deliver('ping', { zen: 'Keep it logically awesome.', hook_id: 1 });
  expect(ping.status).toBe(200);
  expect(await ping.json()).toMatchObject({ result: 'pong' });

  const bad = await deliver('ping', { zen: 'x' }, { badSignature: true });
  expect(bad.status).toBe(401);
  expect((await bad.json()).error.code).toBe('invalid_signature');

  const unsigned = await fetch(hook, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-github-event': 'ping', 'x-github-delivery': randomUUID() },
    body: '{}',
  });
  expect(unsigned.status).toBe(401);
});

it('processes a delivery once and refuses its replay (409)', async () => {
  const rig = await githubRig(h, world, { repos: 1 });
  const deliveryId = randomUUID();
  const payload = world.gh.installationWebhookPayload(rig.installationId, 'suspend');
  const first = await deliver('installation', payload, { deliveryId });
  expect(first.status).toBe(200);
  expect(await first.json()).toMatchObject({
    result: 'status_changed',
    integration_id: rig.integrationId,
    integration_status: 'suspended',
  });

  await h.core.db.platformIntegration.update({ where: { id: rig.integrationId }, data: { status: 'active' } });
  const replay = await deliver('installation', payload, { deliveryId });
  expect(replay.status).toBe(409);
  expect((await replay.json()).error.code).toBe('delivery_replayed');
  expect(await statusOf(rig.integrationId)).toBe('active'); // the replay changed nothing
});

it('suspends and unsuspends: the running dispatch shows installation_suspended, then gets tokens again', async () => {
  const rig = await githubRig(h, world, { repos: 2 });
  const d = await dispatchTo(h, containers, rig.rigId, 'wh-suspend');
  await containers.waitForPush(d.container, (p) => p.generation === 1);

  world.gh.suspend(rig.installationId);
  const started = Date.now();
  const res = await deliver('installation', world.gh.installationWebhookPayload(rig.installationId, 'suspend'));
  expect(res.status).toBe(200);
  expect(Date.now() - started).toBeLessThan(5000);
  expect(await statusOf(rig.integrationId)).toBe('suspended');
  expect((await credentialError(d.dispatchId)).last_error?.code).toBe('installation_suspended');
  const rigView = await h.call<{ integration: { status: string } }>('GET', `/api/rigs/${rig.rigId}`);
  expect(rigView.body.integration.status).toBe('suspended');

  world.gh.unsuspend(rig.installationId);
  expect((await deliver('installation', world.gh.installationWebhookPayload(rig.installationId, 'unsuspend'))).status).toBe(200);
  expect(await statusOf(rig.integrationId)).toBe('active');
  await resumesThenStops(rig, d);
});

it('marks an uninstalled app deleted: the row and the rig reference stay, dispatches show installation_not_found', async () => {
  const rig = await githubRig(h, world, { repos: 1 });
  const d = await dispatchTo(h, containers, rig.rigId, 'wh-deleted');
  await containers.waitForPush(d.container, (p) => p.generation === 1);
  const payload = world.gh.installationWebhookPayload(rig.installationId, 'deleted');
  world.gh.remove(rig.installationId);
  expect((await deliver('installation', payload)).status).toBe(200);
  expect(await statusOf(rig.integrationId)).toBe('deleted');
  const view = await h.call<{ platform_integration_id: string; integration: { status: string }; credential_source: string }>(
    'GET',
    `/api/rigs/${rig.rigId}`,
  );
  expect(view.body).toMatchObject({
    platform_integration_id: rig.integrationId,
    integration: { status: 'deleted' },
    credential_source: 'integration',
  });
  expect((await credentialError(d.dispatchId)).last_error?.code).toBe('installation_not_found');
  // Deleted is final: a late unsuspend does not bring it back.
  expect(await (await deliver('installation', { ...payload, action: 'unsuspend' })).json()).toMatchObject({
    result: 'unchanged',
    integration_status: 'deleted',
  });
});

it('keeps the cached repository list in step with installation_repositories', async () => {
  const rig = await githubRig(h, world, { repos: 3 });
  const cached = async () =>
    (
      await h.call<{ repositories: Array<{ id: number; default_branch: string; private: boolean }> }>(
        'GET',
        `/api/integrations/${rig.integrationId}/repositories`,
      )
    ).body.repositories;
  const pagesBefore = world.gh.stats.repositoryPages;

  // Removed: applied to the cache from the payload alone, no listing.
  const removed = rig.repositories[2];
  world.gh.removeRepository(rig.installationId, removed.id);
  const res = await repositoriesChanged(rig.installationId, 'removed', [removed]);
  expect(await res.json()).toMatchObject({ result: 'repositories_updated', detail: '0 added, 1 removed' });
  expect((await cached()).map((r) => r.id)).toEqual([rig.repositories[0].id, rig.repositories[1].id]);
  expect(world.gh.stats.repositoryPages).toBe(pagesBefore);

  // Added: the payload has no default branch or clone URL, so the list is fetched again.
  const added = world.gh.addRepository(rig.installationId, { name: 'fresh-repo', default_branch: 'trunk', private: true });
  const res2 = await repositoriesChanged(rig.installationId, 'added', [added]);
  expect(await res2.json()).toMatchObject({ result: 'repositories_updated', detail: '1 added, 0 removed' });
  const after = await cached();
  expect(after.map((r) => r.id)).not.toContain(removed.id);
  expect(after.find((r) => r.id === added.id)).toMatchObject({ default_branch: 'trunk', private: true });
});

it('wakes a dispatch waiting on repository_not_accessible when its repository is added back', async () => {
  const rig = await githubRig(h, world, { repos: 2 });
  const d = await dispatchTo(h, containers, rig.rigId, 'wh-readd');
  await containers.waitForPush(d.container, (p) => p.generation === 1);
  world.gh.removeRepository(rig.installationId, rig.repo.id);
  expect((await repositoriesChanged(rig.installationId, 'removed', [rig.repo])).status).toBe(200);
  expect((await credentialError(d.dispatchId)).last_error?.code).toBe('repository_not_accessible');

  // Newly accepted permissions make such a dispatch try again at once too (here it still fails).
  const failures = () => h.core.db.tokenEvent.count({ where: { dispatchId: d.dispatchId, kind: 'refresh_failed' } });
  const failedBefore = await failures();
  const accepted = await deliver('installation', world.gh.installationWebhookPayload(rig.installationId, 'new_permissions_accepted'));
  expect([accepted.status, await accepted.json()]).toEqual([
    200,
    expect.objectContaining({ result: 'unchanged', integration_id: rig.integrationId }),
  ]);
  await eventually(async () => (await failures()) > failedBefore, 10_000, 'a mint right after the permissions were accepted');

  // Put back: the dispatch mints now, not at its recheck 15 minutes on.
  const back = world.gh.addRepository(rig.installationId, { name: rig.repo.name });
  expect(back.id).toBe(rig.repo.id);
  expect((await repositoriesChanged(rig.installationId, 'added', [back])).status).toBe(200);
  await resumesThenStops(rig, d, 10_000);
});

it('a refresh of the list that was fetched before a removal arrived does not bring the repository back', async () => {
  const rig = await githubRig(h, world, { repos: 3 });
  const removed = rig.repositories[2];
  const path = `/api/integrations/${rig.integrationId}/repositories`;
  // The refresh's listing is made now and arrives 1.5 s later; the removal lands in between.
  world.gh.failNext(1, { status: 200, late: true, hangMs: 1500, match: (_m, p) => p.startsWith('/installation/repositories') });
  const refreshing = h.call<{ repositories: Array<{ id: number }> }>('GET', `${path}?refresh=true`);
  await new Promise((r) => setTimeout(r, 300));
  world.gh.removeRepository(rig.installationId, removed.id);
  const res = await repositoriesChanged(rig.installationId, 'removed', [removed]);
  expect(res.status).toBe(200);
  expect((await refreshing).status).toBe(200);
  const cached = (await h.call<{ repositories: Array<{ id: number }> }>('GET', path)).body.repositories.map((r) => r.id);
  expect(cached).toEqual([rig.repositories[0].id, rig.repositories[1].id]);
  // And a rig on it is refused, as for any repository the installation does not have.
  const town = await h.call<{ id: string }>('POST', '/api/towns', { name: `t-${randomUUID().slice(0, 6)}`, owner_id: rig.owner });
  const rigOnRemoved = await h.call('POST', `/api/towns/${town.body.id}/rigs`, {
    name: 'gone',
    platform_integration_id: rig.integrationId,
    repository_id: removed.id,
  });
  expect(rigOnRemoved.status).toBeGreaterThanOrEqual(400);
});

it('accepts form-encoded deliveries and answers 202 for installations and events it does not use', async () => {
  const payload = { action: 'suspend', installation: { id: 987654321 } };
  const body = `payload=${encodeURIComponent(JSON.stringify(payload))}`;
  const { githubSignature } = await import('../../api/webhooks/github-signature');
  const res = await fetch(hook, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      'x-github-event': 'installation',
      'x-github-delivery': randomUUID(),
      'x-hub-signature-256': githubSignature(WEBHOOK_SECRET, body),
    },
    body,
  });
  expect(res.status).toBe(202);
  expect(await res.json()).toMatchObject({ result: 'ignored' });
  expect((await deliver('push', { ref: 'refs/heads/main' })).status).toBe(202);
  expect((await deliver('installation', { action: 'suspend' })).status).toBe(400);
});

it("forgets the user tokens kept for a person who revoked the standard app's authorization, once GitHub rejects them", async () => {
  /** A person who authorized the standard app, signed in with the pair GitHub gave (kept for installation checks). */
  const signedIn = async (login: string) => {
    const user = world.gh.addUser({ login });
    const code = world.gh.oauth.newCode(world.standard.clientId, user.id, null);
    const tokens = await h.core.githubUser.exchangeCode('standard', { code });
    const ownerId = await h.api.services.identities.signIn(
      { provider: 'github', origin: h.core.githubUser.webUrl, id: user.id, login, name: null, avatarUrl: null, tokens },
      null,
    );
    return { user, ownerId, revoked: { action: 'revoked', sender: { id: user.id, login, type: 'User' } } };
  };
  const kept = async (ownerId: string) => {
    const i = await h.core.db.ownerIdentity.findFirstOrThrow({ where: { ownerId } });
    return { access: i.userTokenEnc !== null, refresh: i.refreshTokenEnc !== null };
  };
  const revoker = await signedIn(`revoker-${randomUUID().slice(0, 6)}`);
  const bystander = await signedIn(`bystander-${randomUUID().slice(0, 6)}`);

  // A delivery while the pair still works (a replay, or a forged app header) keeps it.
  const stale = await deliver('github_app_authorization', revoker.revoked, { appId: world.standard.appId });
  expect([stale.status, await stale.json()]).toEqual([200, { result: 'unchanged', detail: expect.stringContaining('still accepts') }]);
  expect(await kept(revoker.ownerId)).toEqual({ access: true, refresh: true });

  world.gh.oauth.revokeAuthorization(revoker.user.id, world.standard.clientId);
  // The lite app's delivery (the same body: GitHub sends one per app) changes nothing: its tokens are not kept.
  const lite = await deliver('github_app_authorization', revoker.revoked, { appId: world.lite.appId });
  expect([lite.status, (await lite.json()).result]).toEqual([202, 'ignored']);
  expect(await kept(revoker.ownerId)).toEqual({ access: true, refresh: true });

  const res = await deliver('github_app_authorization', revoker.revoked, { appId: `0${world.standard.appId}` });
  expect(res.status).toBe(200);
  expect(await res.json()).toEqual({ result: 'user_tokens_forgotten', detail: `authorization revoked by ${revoker.user.login}` });
  expect(await kept(revoker.ownerId)).toEqual({ access: false, refresh: false });
  expect(await h.api.services.identities.githubUserToken(revoker.ownerId)).toBeNull();
  expect(await kept(bystander.ownerId)).toEqual({ access: true, refresh: true });

  // A delivery id seen before is still refused; one for nobody kept here changes nothing; a malformed one is refused.
  const id = randomUUID();
  expect((await deliver('github_app_authorization', bystander.revoked, { deliveryId: id })).status).toBe(200);
  expect((await deliver('github_app_authorization', bystander.revoked, { deliveryId: id })).status).toBe(409);
  expect(await kept(bystander.ownerId)).toEqual({ access: true, refresh: true });
  expect((await deliver('github_app_authorization', { action: 'revoked' })).status).toBe(400);
});

describe('without GITHUB_WEBHOOK_SECRET', () => {
  it('refuses every delivery with 503 and says why', async () => {
    const bare = await dashboardWorld({ gitlab: false });
    const h2 = await startDashboard(bare, { worker: false, env: { GITHUB_WEBHOOK_SECRET: undefined } });
    try {
      const res = await FakeGitHub.deliverWebhook(`${h2.url}/webhooks/github`, WEBHOOK_SECRET, 'ping', { zen: 'x' });
      expect(res.status).toBe(503);
      expect((await res.json()).error).toMatchObject({
        code: 'webhooks_not_configured',
        message: expect.stringContaining('GITHUB_WEBHOOK_SECRET'),
      });
    } finally {
      await h2.close();
      await bare.close();
    }
  });
});
