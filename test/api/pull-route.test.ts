// POST /api/internal/rigs/:rig_id/git-token: authentication by container token, rate limiting,
// the in-memory hot path, refresh through the workflow (one mint however many stale pulls), and
// cache invalidation across API instances through Postgres LISTEN/NOTIFY.
import { FakeContainerHost } from '../fakes/container';
import { eventually, startHarness, type Harness } from '../helpers/harness';
import { dispatchTo, githubRig, githubWorld, pull, townTokenRig, type GithubWorld } from '../helpers/scenario';
import { createCore, type Core } from '../../lib/core';
import { createMetrics } from '../../lib/metrics';
import { LEASE_CHANNEL } from '../../lib/lease-store';
import { leaseTokenContext } from '../../lib/secret-contexts';
import { startApi, type RunningApi } from '../../api/server';

let world: GithubWorld;
let containers: FakeContainerHost;
let h: Harness;
// A second API instance over the same Postgres: what a scaled-out deployment looks like.
let core2: Core;
let api2: RunningApi;

beforeAll(async () => {
  world = await githubWorld();
  containers = await FakeContainerHost.start();
  h = await startHarness({ env: { ...world.env, PULL_RATE_LIMIT_PER_MINUTE: '100000' } });
  core2 = await createCore(h.core.config, { logger: h.core.logger, metrics: createMetrics({ defaults: false }) });
  api2 = await startApi(core2, { logger: h.core.logger });
});
afterAll(async () => {
  await api2?.close();
  await core2?.close();
  await h?.close();
  await containers?.close();
  await world?.gh.close();
});

/** A pull, saying which generation the caller holds when `held` is given (as the credential helper does). */
async function pullFrom(url: string, rigId: string, token: string, held?: string) {
  const headers: Record<string, string> = { authorization: `Bearer ${token}` };
  if (held !== undefined) headers['repo-connect-generation'] = held;
  const res = await fetch(`${url}/api/internal/rigs/${rigId}/git-token`, { method: 'POST', headers });
  return {
    status: res.status,
    body: (await res.json()) as { token: string; generation: number; error?: { code: string; field?: string } },
  };
}

/** Makes the dispatch's lease look nearly expired, as a late or failing refresh would leave it. */
async function makeStale(dispatchId: string) {
  await h.core.db.$executeRaw`
    UPDATE token_leases SET created_at = now() - interval '1 hour', expires_at = now() + interval '1 second'
    WHERE dispatch_id = ${dispatchId}::uuid`;
  await h.core.db.$executeRaw`SELECT pg_notify(${LEASE_CHANNEL}, ${dispatchId})`;
  await new Promise((r) => setTimeout(r, 200)); // let both instances hear it
}

it('authenticates by container token: 401 unknown, 403 other rig, 410 after the dispatch ended', async () => {
  const a = await githubRig(h, world, { repos: 1 });
  const b = await githubRig(h, world, { repos: 1 });
  const da = await dispatchTo(h, containers, a.rigId, 'pull-a');
  await containers.waitForPush(da.container, (p) => p.generation === 1);

  expect((await pull(h, a.rigId, 'rcc_not-a-real-token')).status).toBe(401);
  const badRig = await pull(h, 'not-a-uuid', da.containerToken);
  expect(badRig.status).toBe(400);
  expect(badRig.body.error).toMatchObject({ code: 'invalid_request', field: 'rig_id' });
  const none = await fetch(`${h.url}/api/internal/rigs/${a.rigId}/git-token`, { method: 'POST' });
  expect(none.status).toBe(401);
  expect(none.headers.get('www-authenticate')).toBe('Bearer');
  const other = await pull(h, b.rigId, da.containerToken);
  expect(other.status).toBe(403);
  expect(other.body.error?.code).toBe('forbidden');

  const ok = await pull(h, a.rigId, da.containerToken);
  expect(ok.status).toBe(200);
  expect(ok.headers.get('cache-control')).toBe('no-store');
  expect(ok.body).toEqual({
    token: containers.latest(da.container)!.token,
    expires_at: containers.latest(da.container)!.expires_at,
    username: 'x-access-token',
    generation: 1,
  });

  await h.call('POST', `/api/dispatches/${da.dispatchId}/stop`);
  await eventually(async () => (await pull(h, a.rigId, da.containerToken)).status === 410);
  expect((await pullFrom(api2.url, a.rigId, da.containerToken)).status).toBe(410);
});

it('serves a fresh lease from memory, and limits each container token with 429 and Retry-After', async () => {
  const rig = await githubRig(h, world, { repos: 1 });
  const d = await dispatchTo(h, containers, rig.rigId, 'pull-hot');
  await containers.waitForPush(d.container, (p) => p.generation === 1);
  // An instance configured with a small limit: 60 a minute, bursts of 15.
  const metrics = createMetrics({ defaults: false });
  const limitedCore = await createCore({ ...h.core.config, pullRateLimitPerMinute: 60 }, { logger: h.core.logger, metrics });
  const limitedApi = await startApi(limitedCore, { logger: h.core.logger });
  const mints = world.gh.stats.mints;
  const hits = async () => (await metrics.pulls.get()).values.find((v) => v.labels.result === 'hit')?.value ?? 0;
  const results: Array<{ status: number; headers: Headers }> = [];
  try {
    for (let i = 0; i < 25; i++) {
      const res = await fetch(`${limitedApi.url}/api/internal/rigs/${rig.rigId}/git-token`, {
        method: 'POST',
        headers: { authorization: `Bearer ${d.containerToken}` },
      });
      await res.arrayBuffer();
      results.push({ status: res.status, headers: res.headers });
    }
  } finally {
    await limitedApi.close();
    await limitedCore.close();
  }
  const ok = results.filter((r) => r.status === 200);
  const limited = results.filter((r) => r.status === 429);
  expect(ok.length).toBe(15); // burst of a quarter of the per-minute limit
  expect(limited.length).toBe(10);
  expect(Number(limited[0].headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
  expect(await hits()).toBe(14); // all but the first came from memory
  expect(world.gh.stats.mints).toBe(mints); // and none reached GitHub

  // Every served pull is audited, off the hot path: one row per second and generation, with the count.
  const pulledCount = async () => {
    const rows = await h.core.db.tokenEvent.findMany({ where: { dispatchId: d.dispatchId, kind: 'pulled' } });
    return rows.reduce((n, r) => n + (r.detail ? Number(/^(\d+) pulls$/.exec(r.detail)![1]) : 1), 0);
  };
  await eventually(async () => (await pulledCount()) === 15, 5000);
  await h.call('POST', `/api/dispatches/${d.dispatchId}/stop`);
});

it('turns 100 concurrent stale pulls on two API instances into exactly one upstream mint', async () => {
  const rig = await githubRig(h, world, { repos: 1 });
  const d = await dispatchTo(h, containers, rig.rigId, 'pull-stale');
  const first = await containers.waitForPush(d.container, (p) => p.generation === 1);
  const mintsBefore = world.gh.stats.mintsFor(rig.installationId);
  await makeStale(d.dispatchId);

  const results = await Promise.all(
    Array.from({ length: 100 }, (_, i) => pullFrom(i % 2 === 0 ? h.url : api2.url, rig.rigId, d.containerToken)),
  );
  const statuses = results.map((r) => r.status);
  const served = results.filter((r) => r.status === 200);
  expect(new Set(statuses)).toEqual(new Set([200]));
  expect(new Set(served.map((r) => r.body.generation))).toEqual(new Set([2]));
  expect(served.every((r) => r.body.token !== first.token)).toBe(true);
  expect(world.gh.stats.mintsFor(rig.installationId) - mintsBefore).toBe(1);
  await h.call('POST', `/api/dispatches/${d.dispatchId}/stop`);
});

it('never serves a superseded token from another instance once the new one is pushed', async () => {
  const { townId, rigId } = await townTokenRig(h, { name: 'notify', token: 'first-static' });
  const d = await dispatchTo(h, containers, rigId, 'pull-notify');
  await containers.waitForPush(d.container, (p) => p.generation === 1);
  // Warm the second instance's cache with generation 1.
  expect((await pullFrom(api2.url, rigId, d.containerToken)).body.token).toBe('first-static');
  expect((await pullFrom(api2.url, rigId, d.containerToken)).body.token).toBe('first-static');

  await h.call('PUT', `/api/towns/${townId}/git-auth`, { tokens: [{ host: 'git.example.com', token: 'second-static' }] });
  const pushed = await containers.waitForPush(d.container, (p) => p.generation === 2);
  // The container pulls saying what it holds: even if the NOTIFY has not reached api2 yet, the push
  // has, so api2 must not answer with generation 1.
  const after = await pullFrom(api2.url, rigId, d.containerToken, String(pushed.generation));
  expect(after.body).toMatchObject({ token: 'second-static', generation: 2 });
  // And once the notification is in, a pull that says nothing gets the new lease too.
  await eventually(async () => (await pullFrom(api2.url, rigId, d.containerToken)).body.generation === 2);
  await h.call('POST', `/api/dispatches/${d.dispatchId}/stop`);
});

it('reads Postgres when the caller holds a newer generation than the cached copy (its NOTIFY not yet heard)', async () => {
  const { rigId } = await townTokenRig(h, { name: 'held', token: 'held-first' });
  const d = await dispatchTo(h, containers, rigId, 'pull-held');
  await containers.waitForPush(d.container, (p) => p.generation === 1);
  expect((await pullFrom(api2.url, rigId, d.containerToken)).body.generation).toBe(1);
  expect((await pullFrom(api2.url, rigId, d.containerToken)).body.generation).toBe(1);

  // A lease write whose notification never arrives: written here without NOTIFY, so api2's copy
  // stays at generation 1 for as long as this test runs.
  const enc = h.core.secrets.encrypt('held-second', leaseTokenContext(d.dispatchId));
  await h.core.db.$executeRaw`
    UPDATE token_leases SET token_enc = ${enc}, generation = 2 WHERE dispatch_id = ${d.dispatchId}::uuid`;
  const silent = await pullFrom(api2.url, rigId, d.containerToken);
  expect(silent.body).toMatchObject({ token: 'held-first', generation: 1 }); // the copy is stale: the case at hand

  const said = await pullFrom(api2.url, rigId, d.containerToken, '2');
  expect(said.status).toBe(200);
  expect(said.body).toMatchObject({ token: 'held-second', generation: 2 });
  // The read replaced the copy: pulls that say nothing get generation 2 from memory now.
  expect((await pullFrom(api2.url, rigId, d.containerToken)).body).toMatchObject({ token: 'held-second', generation: 2 });
  // A generation Postgres does not have either: Postgres is the truth, and that is what is served.
  expect((await pullFrom(api2.url, rigId, d.containerToken, '99')).body).toMatchObject({ generation: 2 });

  for (const bad of ['0', '-1', 'two', '1.5', '99999999999999999']) {
    const res = await pullFrom(api2.url, rigId, d.containerToken, bad);
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ code: 'invalid_request', field: 'Repo-Connect-Generation' });
  }
  await h.call('POST', `/api/dispatches/${d.dispatchId}/stop`);
});
