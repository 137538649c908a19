// GitLab's shared OAuth grant: refresh tokens rotate and the old access token dies at once, so many
// dispatches on one integration must cause exactly one refresh per expiry, and every one of them
// must get the new token pushed within seconds. Real API, worker, Temporal, Postgres; fake GitLab.
import { fingerprint } from '../../lib/secrets';
import { FakeContainerHost } from '../fakes/container';
import { FakeGitLab } from '../fakes/gitlab';
import { eventually, newOwner, startHarness, type Harness } from '../helpers/harness';
import { credentialsChangedReasons, dispatchTo, historiesJson, pull, type Dispatched } from '../helpers/scenario';

const LIFETIME = 8;
const CLIENT = { clientId: 'rc-app', clientSecret: 'rc-secret', redirectUri: 'http://127.0.0.1/integrations/gitlab/callback' };

let gl: FakeGitLab;
let h: Harness;
let containers: FakeContainerHost;
const workflowIds: string[] = [];

beforeAll(async () => {
  gl = await FakeGitLab.start();
  gl.accessTokenLifetimeSeconds = LIFETIME;
  gl.registerApplication(CLIENT);
  containers = await FakeContainerHost.start();
  h = await startHarness({
    env: {
      GITLAB_URL: gl.baseUrl,
      GITLAB_CLIENT_ID: CLIENT.clientId,
      GITLAB_CLIENT_SECRET: CLIENT.clientSecret,
      TOKEN_REFRESH_MARGIN_SECONDS: '3',
      REFRESH_JITTER_MAX_SECONDS: '2', // capped at 10 % of the 8 s lifetime: a 0.8 s window
    },
  });
});

afterAll(async () => {
  await h?.close();
  await containers?.close();
  await gl?.close();
});

/** A GitLab user with projects, registered as an integration, and a town with a rig per project. */
async function gitlabSetup(username: string, rigs: number) {
  const user = gl.addUser({ username });
  const projects = gl.addProjects(user.id, rigs);
  const grant = gl.grant(user.id, CLIENT.clientId);
  const owner = newOwner();
  const integration = await h.call<{ id: string; account: string }>('POST', '/api/integrations', {
    provider: 'gitlab',
    owner_id: owner,
    access_token: grant.accessToken,
    refresh_token: grant.refreshToken,
    expires_at: grant.expiresAt.toISOString(),
  });
  expect(integration.status).toBe(201);
  expect(integration.body.account).toBe(username);
  const town = await h.call<{ id: string }>('POST', '/api/towns', { name: 'gl', owner_id: owner });
  const rigIds: string[] = [];
  for (const p of projects) {
    const rig = await h.call<{ id: string; git_url: string }>('POST', `/api/towns/${town.body.id}/rigs`, {
      name: p.path,
      platform_integration_id: integration.body.id,
      repository_id: p.id,
    });
    expect(rig.status).toBe(201);
    expect(rig.body.git_url).toBe(p.http_url_to_repo);
    rigIds.push(rig.body.id);
  }
  return { user, integrationId: integration.body.id, rigIds, grantToken: grant.accessToken };
}

it('refreshes the shared grant once per expiry for many dispatches and pushes the new token to all of them within seconds', async () => {
  const refreshesBefore = gl.stats.refreshes;
  const started = Date.now();
  const { rigIds, grantToken } = await gitlabSetup('alice', 3);
  const ds: Dispatched[] = [];
  // Six dispatches on three rigs of one integration, started together.
  await Promise.all(
    Array.from({ length: 6 }, async (_, i) => {
      const d = await dispatchTo(h, containers, rigIds[i % 3], `gl-many-${i}`);
      ds.push(d);
      workflowIds.push(d.workflowId);
    }),
  );
  // Three expiries later every container must hold the fourth distinct token.
  const tokensSeen = () => new Set(ds.flatMap((d) => containers.pushes(d.container).map((p) => p.token)));
  await eventually(
    async () => tokensSeen().size >= 4 && ds.every((d) => new Set(containers.pushes(d.container).map((p) => p.token)).size >= 4),
    45_000,
    'four tokens at every container',
  );

  // One refresh per expiry, however many dispatches wanted one: every refresh produced a token
  // that dispatches leased (none wasted, none lost to a concurrent refresh).
  const integ = await h.core.db.rig.findUniqueOrThrow({
    where: { id: rigIds[0] },
    select: { integration: { select: { tokenVersion: true } } },
  });
  const refreshes = gl.stats.refreshes - refreshesBefore;
  const elapsedS = (Date.now() - started) / 1000;
  expect(gl.stats.invalidGrants).toBe(0);
  expect(refreshes).toBeGreaterThanOrEqual(3);
  // At most one refresh per token lifetime less its lead (margin 3 s, jitter up to 0.8 s), however
  // many dispatches share the grant, and one more at the start (the grant's first token may be too
  // short for the dispatches' first mints): one refresh per dispatch would be six times as many.
  expect(refreshes).toBeLessThanOrEqual(Math.floor(elapsedS / (LIFETIME - 3.8)) + 2);
  expect(integ.integration!.tokenVersion).toBeGreaterThanOrEqual(refreshes - 1); // a refresh may be committing right now
  const minted = await h.core.db.tokenEvent.findMany({
    where: { dispatchId: { in: ds.map((d) => d.dispatchId) }, kind: 'minted' },
    select: { fingerprint: true },
  });
  const distinctLeased = new Set(minted.map((m) => m.fingerprint)).size;
  // The grant's own token, unless it was too short for the first mints (then the refresh at the
  // start replaced it), and every refresh's but possibly the one in flight.
  const grantLeased = minted.some((m) => m.fingerprint === fingerprint(grantToken));
  expect(distinctLeased).toBeGreaterThanOrEqual(refreshes - (grantLeased ? 0 : 1));
  expect(distinctLeased).toBeLessThanOrEqual(refreshes + (grantLeased ? 1 : 0));
  // No spinning on a shared token that is still valid: a reuse only answers a fan-out signal that
  // found the new token already leased, at most once per dispatch and refresh (a spin would be
  // dozens per dispatch in the jitter window).
  const reused = (await h.core.metrics.mints.get()).values
    .filter((v) => v.labels.provider === 'gitlab' && v.labels.outcome === 'reused')
    .reduce((n, v) => n + v.value, 0);
  expect(reused).toBeLessThanOrEqual(ds.length * (refreshes + 1));

  // Every refresh's token reached every container (the newest may still be fanning out), each
  // within a few seconds of the first one.
  const arrivalsOf = (token: string) =>
    ds.map((d) => containers.pushes(d.container).find((p) => p.token === token)?.receivedAt).filter((t): t is number => t !== undefined);
  const everywhere = [...tokensSeen()].filter((t) => arrivalsOf(t).length === ds.length);
  expect(everywhere.length).toBeGreaterThanOrEqual(refreshes);
  for (const token of everywhere) {
    const arrivals = arrivalsOf(token);
    expect(Math.max(...arrivals) - Math.min(...arrivals)).toBeLessThan(3000);
  }
  // Every push carried the username GitLab wants, and each container ends up with a token GitLab takes.
  for (const d of ds) expect(containers.pushes(d.container).every((p) => p.username === 'oauth2')).toBe(true);
  await eventually(
    async () => ds.every((d) => gl.isAccessTokenLive(containers.latest(d.container)!.token)),
    10_000,
    'every container holding a live token',
  );
  // A pull returns the same token as the latest push, and it works at GitLab.
  const d0 = ds[0];
  const pulled = await pull(h, d0.rigId, d0.containerToken);
  expect(pulled.status).toBe(200);
  expect(pulled.body.token).toBe(containers.latest(d0.container)!.token);
  expect(gl.isAccessTokenLive(pulled.body.token)).toBe(true);

  // Stopping one dispatch revokes nothing shared: the others keep a working token.
  await h.call('POST', `/api/dispatches/${ds[1].dispatchId}/stop`);
  await eventually(async () => (await h.call<{ status: string }>('GET', `/api/dispatches/${ds[1].dispatchId}`)).body.status === 'stopped');
  expect(gl.isAccessTokenLive(containers.latest(ds[0].container)!.token)).toBe(true);
  for (const d of ds.filter((_, i) => i !== 1)) await h.call('POST', `/api/dispatches/${d.dispatchId}/stop`);
});

it('does not tell a dispatch of the refreshes its own mints make (alone on its integration, it is told of none)', async () => {
  const refreshesBefore = gl.stats.refreshes;
  const { rigIds } = await gitlabSetup('carol', 1);
  const d = await dispatchTo(h, containers, rigIds[0], 'gl-alone');
  workflowIds.push(d.workflowId);
  // Each refresh is its own mint's: the grant's token lives 8 s and is refreshed 3 s before.
  await containers.waitForPush(d.container, (p) => p.generation === 3, 30_000);
  expect(gl.stats.refreshes - refreshesBefore).toBeGreaterThanOrEqual(2);
  expect(await credentialsChangedReasons(h, d.workflowId)).toEqual([]);
  await h.call('POST', `/api/dispatches/${d.dispatchId}/stop`);
});

it('marks the integration reconnect_required on invalid_grant, waits without polling, and resumes after reconnecting', async () => {
  const { user, integrationId, rigIds } = await gitlabSetup('bob', 1);
  const d = await dispatchTo(h, containers, rigIds[0], 'gl-revoked');
  workflowIds.push(d.workflowId);
  await containers.waitForPush(d.container, (p) => p.generation === 1);
  gl.revokeGrant(user.id); // the user revoked the app on GitLab: the next refresh gets invalid_grant

  const failed = await eventually(async () => {
    const r = await h.call<{ status: string; last_error: { code: string } | null }>('GET', `/api/dispatches/${d.dispatchId}`);
    return r.body.status === 'credential_error' ? r.body : null;
  }, 20_000);
  expect(failed.last_error?.code).toBe('reconnect_required');
  const list = await h.call<{ integrations: Array<{ id: string; status: string }> }>(
    'GET',
    `/api/integrations?owner_id=${(await h.core.db.platformIntegration.findUniqueOrThrow({ where: { id: integrationId } })).ownerId}`,
  );
  expect(list.body.integrations.find((i) => i.id === integrationId)?.status).toBe('reconnect_required');

  // No busy loop: the dead grant is not retried while nobody changes anything.
  const invalidGrants = gl.stats.invalidGrants;
  await new Promise((r) => setTimeout(r, 3000));
  expect(gl.stats.invalidGrants).toBe(invalidGrants);

  // Reconnecting the same GitLab user replaces the grant and wakes the dispatch.
  const grant = gl.grant(user.id, CLIENT.clientId);
  const owner = (await h.core.db.platformIntegration.findUniqueOrThrow({ where: { id: integrationId } })).ownerId;
  const again = await h.call<{ id: string; status: string }>('POST', '/api/integrations', {
    provider: 'gitlab',
    owner_id: owner,
    access_token: grant.accessToken,
    refresh_token: grant.refreshToken,
    expires_at: grant.expiresAt.toISOString(),
  });
  expect(again.status).toBe(201);
  expect(again.body).toMatchObject({ id: integrationId, status: 'active' });
  const resumed = await containers.waitForPush(d.container, (p) => p.token === grant.accessToken, 10_000);
  expect(resumed.generation).toBeGreaterThan(1);
  await eventually(async () => (await h.call<{ status: string }>('GET', `/api/dispatches/${d.dispatchId}`)).body.status === 'active');
  await h.call('POST', `/api/dispatches/${d.dispatchId}/stop`);
});

it('keeps no GitLab token in any workflow history or log line', async () => {
  const tokens = gl.issuedTokens();
  expect(tokens.length).toBeGreaterThan(4);
  const text = await historiesJson(h, workflowIds);
  const logText = h.logs.join('');
  for (const t of tokens) {
    expect(text.includes(t)).toBe(false);
    expect(logText.includes(t)).toBe(false);
  }
});
