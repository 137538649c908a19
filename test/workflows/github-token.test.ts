// GitHub App tokens through the whole product: API → workflow on the real dev server → fake GitHub
// (JWT checked, tokens scoped and expiring) → fake container. Lifetimes are seconds long.
import { FakeContainerHost, type ReceivedPush } from '../fakes/container';
import { eventually, startHarness, type Harness } from '../helpers/harness';
import { dispatchTo, githubRig, githubWorld, historiesJson, pull, type GithubWorld } from '../helpers/scenario';
import { RepositoryKey } from '../../workflows/search-attributes';

const LIFETIME = 8;
const MARGIN = 3;

let world: GithubWorld;
let h: Harness;
let containers: FakeContainerHost;
const workflowIds: string[] = [];

beforeAll(async () => {
  world = await githubWorld({ tokenLifetimeSeconds: LIFETIME });
  containers = await FakeContainerHost.start();
  // Three cycles per run, so the multi-cycle test also crosses continue-as-new.
  h = await startHarness({
    env: { ...world.env, TOKEN_REFRESH_MARGIN_SECONDS: String(MARGIN), REFRESH_JITTER_MAX_SECONDS: '0.5' },
    workflowDefaults: { cyclesPerRun: 3 },
  });
});

afterAll(async () => {
  await h?.close();
  await containers?.close();
  await world?.gh.close();
});

/** Validity the token had left when the container received it. */
const leftAtPush = (p: ReceivedPush) => (Date.parse(p.expires_at!) - p.receivedAt) / 1000;

it('pushes a working, repository-scoped token and refreshes it before expiry, cycle after cycle, across continue-as-new', async () => {
  const rig = await githubRig(h, world, { repos: 3 });
  const d = await dispatchTo(h, containers, rig.rigId, 'gh-cycles');
  workflowIds.push(d.workflowId);
  const liveAtPush: boolean[] = [];
  const otherRepoAtPush: boolean[] = [];
  for (let g = 1; g <= 5; g++) {
    const p = await containers.waitForPush(d.container, (x) => x.generation === g, 20_000);
    liveAtPush.push(world.gh.isTokenLive(p.token, rig.repo.full_name, 'write'));
    otherRepoAtPush.push(world.gh.isTokenLive(p.token, rig.repositories[1].full_name, 'read'));
  }
  const pushes = containers.pushes(d.container);
  expect(liveAtPush).toEqual([true, true, true, true, true]);
  expect(otherRepoAtPush).toEqual([false, false, false, false, false]); // least privilege: one repository
  expect(pushes[0]).toMatchObject({ username: 'x-access-token', rig_id: rig.rigId, dispatch_id: d.dispatchId });
  expect(pushes[0].token.length).toBeGreaterThan(500);

  // Each new token arrived while the previous one still had validity left (no gap for git).
  for (let i = 1; i < 5; i++) expect(pushes[i].receivedAt).toBeLessThan(Date.parse(pushes[i - 1].expires_at!));
  for (const p of pushes.slice(0, 5)) expect(leftAtPush(p)).toBeGreaterThan(MARGIN - 1);

  // One upstream mint per cycle, each scoped to the rig's repository with the standard permissions.
  // (The repository listing behind the rig picker mints one unscoped, metadata-only token.)
  const mints = world.gh.accessTokenRequests.filter((r) => r.installationId === rig.installationId && r.repositoryIds !== null);
  expect(mints.length).toBeGreaterThanOrEqual(5);
  expect(mints.length).toBeLessThanOrEqual(6); // the sixth may be in flight
  for (const m of mints)
    expect(m).toMatchObject({ repositoryIds: [rig.repo.id], permissions: { contents: 'write', metadata: 'read' }, status: 201 });

  // Continue-as-new happened (3 cycles per run) and the loop kept going.
  // Every run, the continued ones too, names the rig's repository in the UI's workflow list.
  const runs: string[] = [];
  const repositories = new Set<string | undefined>();
  for await (const wf of h.core.temporal.workflow.list({ query: `WorkflowId = "${d.workflowId}"` })) {
    runs.push(wf.runId);
    repositories.add(wf.typedSearchAttributes.get(RepositoryKey));
  }
  expect(runs.length).toBeGreaterThanOrEqual(2);
  expect([...repositories]).toEqual([rig.repo.full_name]);

  const s = await h.call<{ status: string; generation: number; credential_source: string }>('GET', `/api/dispatches/${d.dispatchId}`);
  expect(s.body).toMatchObject({ status: 'active', credential_source: 'integration', credential_scope: 'repository' });
  expect(s.body.generation).toBeGreaterThanOrEqual(5);
});

it('gives lite installations read-only tokens', async () => {
  const rig = await githubRig(h, world, { appType: 'lite', repos: 1 });
  const d = await dispatchTo(h, containers, rig.rigId, 'gh-lite');
  workflowIds.push(d.workflowId);
  const p = await containers.waitForPush(d.container, (x) => x.generation === 1);
  expect(world.gh.isTokenLive(p.token, rig.repo.full_name, 'read')).toBe(true);
  expect(world.gh.isTokenLive(p.token, rig.repo.full_name, 'write')).toBe(false);
  expect(world.gh.accessTokenRequests.find((r) => r.installationId === rig.installationId && r.repositoryIds !== null)).toMatchObject({
    repositoryIds: [rig.repo.id],
    permissions: { contents: 'read', metadata: 'read' },
  });
  await h.call('POST', `/api/dispatches/${d.dispatchId}/stop`);
});

it('gives a read rig on a standard installation contents: read tokens, and contents: write ones once its access is write', async () => {
  const rig = await githubRig(h, world, { repos: 1, access: 'read' });
  const d = await dispatchTo(h, containers, rig.rigId, 'gh-read');
  workflowIds.push(d.workflowId);
  const p = await containers.waitForPush(d.container, (x) => x.generation === 1);
  expect(world.gh.isTokenLive(p.token, rig.repo.full_name, 'read')).toBe(true);
  expect(world.gh.isTokenLive(p.token, rig.repo.full_name, 'write')).toBe(false);
  const mintsOf = () => world.gh.accessTokenRequests.filter((r) => r.installationId === rig.installationId && r.repositoryIds !== null);
  expect(mintsOf()[0]).toMatchObject({ repositoryIds: [rig.repo.id], permissions: { contents: 'read', metadata: 'read' }, status: 201 });

  // The owner lets its agents push: the running dispatch gets a token that writes, without a restart.
  const asked = mintsOf().length;
  expect((await h.call('PATCH', `/api/rigs/${rig.rigId}`, { access: 'write' })).status).toBe(200);
  const w = await containers.waitForPush(d.container, (x) => world.gh.isTokenLive(x.token, rig.repo.full_name, 'write'), 15_000);
  expect(w.generation).toBeGreaterThan(p.generation);
  expect(
    mintsOf()
      .slice(0, asked)
      .every((m) => m.permissions?.contents === 'read'),
  ).toBe(true);
  expect(mintsOf().at(-1)).toMatchObject({ permissions: { contents: 'write', metadata: 'read' } });

  // Back to read: the token that could write is revoked as the read one replaces it, not kept for the stop.
  expect((await h.call('PATCH', `/api/rigs/${rig.rigId}`, { access: 'read' })).status).toBe(200);
  const r = await containers.waitForPush(
    d.container,
    (x) => x.generation > w.generation && !world.gh.isTokenLive(x.token, rig.repo.full_name, 'write'),
    15_000,
  );
  const lastWriter = containers
    .pushes(d.container)
    .filter((x) => x.generation < r.generation)
    .at(-1)!;
  expect(world.gh.isTokenLive(r.token, rig.repo.full_name, 'read')).toBe(true);
  expect(world.gh.isTokenRevoked(lastWriter.token)).toBe(true);
  await h.call('POST', `/api/dispatches/${d.dispatchId}/stop`);
});

it('pushes only a token GitHub already accepts (waits out the replication lag)', async () => {
  world.gh.newTokenUnauthorizedMs = 1500;
  try {
    const rig = await githubRig(h, world, { repos: 1 });
    const d = await dispatchTo(h, containers, rig.rigId, 'gh-lag');
    workflowIds.push(d.workflowId);
    const p = await containers.waitForPush(d.container, (x) => x.generation === 1);
    expect(world.gh.isTokenLive(p.token, rig.repo.full_name, 'write')).toBe(true);
    await h.call('POST', `/api/dispatches/${d.dispatchId}/stop`);
  } finally {
    world.gh.newTokenUnauthorizedMs = 0;
  }
});

it('revokes the token at stop and refuses pulls afterwards', async () => {
  const rig = await githubRig(h, world, { repos: 1 });
  const d = await dispatchTo(h, containers, rig.rigId, 'gh-stop');
  workflowIds.push(d.workflowId);
  const p = await containers.waitForPush(d.container, (x) => x.generation === 1);
  expect((await pull(h, rig.rigId, d.containerToken)).body.token).toBe(p.token);

  const revokesBefore = world.gh.stats.revokes;
  expect((await h.call('POST', `/api/dispatches/${d.dispatchId}/stop`)).status).toBe(202);
  await eventually(async () => (await h.call<{ status: string }>('GET', `/api/dispatches/${d.dispatchId}`)).body.status === 'stopped');
  // Revoked at GitHub, not merely expired (these tokens live 8 s).
  expect(world.gh.isTokenRevoked(p.token)).toBe(true);
  expect(world.gh.stats.revokes - revokesBefore).toBeGreaterThanOrEqual(1);
  // The API drops its cached copy when the end's NOTIFY reaches its listener, which on a loaded
  // machine can come a moment after the status reads stopped through another connection.
  expect(await eventually(async () => ((await pull(h, rig.rigId, d.containerToken)).status === 410 ? 410 : null), 3000, '410')).toBe(410);
  const events = await h.call<{ events: Array<{ kind: string; fingerprint: string | null; detail: string | null }> }>(
    'GET',
    `/api/dispatches/${d.dispatchId}/events`,
  );
  expect(events.body.events.find((e) => e.kind === 'revoked')).toMatchObject({ detail: expect.stringMatching(/^revoked/) });
});

it('keeps revoking at stop while GitHub fails to, and reads stopped only once the token is revoked', async () => {
  world.gh.tokenLifetimeSeconds = 120; // so the token still works however long the stop takes here
  try {
    const rig = await githubRig(h, world, { repos: 1 });
    const d = await dispatchTo(h, containers, rig.rigId, 'gh-stop-retry');
    workflowIds.push(d.workflowId);
    const p = await containers.waitForPush(d.container, (x) => x.generation === 1);
    // The stop's first attempt meets three failures in a row (its own retries), the second one more.
    world.gh.failNext(4, { status: 502, match: (m, path) => m === 'DELETE' && path === '/installation/token' });
    expect((await h.call('POST', `/api/dispatches/${d.dispatchId}/stop`)).status).toBe(202);
    await eventually(
      async () => (await h.call<{ status: string }>('GET', `/api/dispatches/${d.dispatchId}`)).body.status === 'stopped',
      30_000,
    );
    expect(world.gh.isTokenRevoked(p.token)).toBe(true);
    const revoked = await h.core.db.tokenEvent.findMany({ where: { dispatchId: d.dispatchId, kind: 'revoked' } });
    expect(revoked.map((e) => e.detail)).toEqual([expect.stringMatching(/^revoked \(/)]);
    expect((await pull(h, rig.rigId, d.containerToken)).status).toBe(410);
  } finally {
    world.gh.tokenLifetimeSeconds = LIFETIME;
  }
});

it('ends as stopped when the container answers 410, token revoked', async () => {
  const rig = await githubRig(h, world, { repos: 1 });
  const d = await dispatchTo(h, containers, rig.rigId, 'gh-gone');
  workflowIds.push(d.workflowId);
  const first = await containers.waitForPush(d.container, (x) => x.generation === 1);
  const issuedBefore = world.gh.tokensOf(rig.installationId).length;
  containers.setMode(d.container, 'gone');
  const s = await eventually(async () => {
    const r = await h.call<{ status: string }>('GET', `/api/dispatches/${d.dispatchId}`);
    return r.body.status === 'stopped' ? r.body : null;
  }, 20_000);
  expect(s.status).toBe('stopped');
  // Both the token the container refused and the one it held before are revoked.
  const last = (await h.core.db.tokenEvent.findFirst({ where: { dispatchId: d.dispatchId, kind: 'revoked' } }))!;
  // (The replaced token is revoked too unless it expired first, as it may on a loaded machine.)
  expect(last.detail).toMatch(/^(replaced token revoked; )?revoked \(container gone\)$/);
  expect(world.gh.isTokenLive(first.token)).toBe(false);
  // The token the container refused (minted after it went away) is revoked at GitHub itself.
  const refused = world.gh.tokensOf(rig.installationId).slice(issuedBefore);
  expect(refused.map((t) => world.gh.isTokenRevoked(t))).toEqual([true]);
});

it('ends as container_unreachable, token revoked, when pushes fail until the token expires', async () => {
  const rig = await githubRig(h, world, { repos: 1 });
  const name = 'gh-unreachable';
  const url = containers.add(name);
  containers.setMode(name, 'drop');
  const res = await h.call<{ dispatch_id: string; workflow_id: string }>('POST', `/api/rigs/${rig.rigId}/dispatches`, {
    container_url: url,
  });
  workflowIds.push(res.body.workflow_id);
  const s = await eventually(async () => {
    const r = await h.call<{ status: string; last_error: { code: string } | null }>('GET', `/api/dispatches/${res.body.dispatch_id}`);
    return r.body.status === 'container_unreachable' ? r.body : null;
  }, 30_000);
  expect(s.last_error?.code).toBe('container_unreachable');
  const lease = await h.core.db.tokenLease.findUnique({ where: { dispatchId: res.body.dispatch_id } });
  expect(lease?.tokenEnc).toBeNull();
  const events = await h.call<{ events: Array<{ kind: string }> }>('GET', `/api/dispatches/${res.body.dispatch_id}/events`);
  expect(events.body.events.filter((e) => e.kind === 'push_failed').length).toBeGreaterThan(1);
  expect(events.body.events.some((e) => e.kind === 'revoked')).toBe(true);
});

it('after an outage that outlived the held token, a push that fails twice more does not end the dispatch', async () => {
  const rig = await githubRig(h, world, { repos: 1 });
  const d = await dispatchTo(h, containers, rig.rigId, 'gh-late-refresh');
  workflowIds.push(d.workflowId);
  const first = await containers.waitForPush(d.container, (x) => x.generation === 1);
  // GitHub is down until the container's token has expired: the refresh comes late.
  world.gh.setOutage(503);
  try {
    await new Promise((r) => setTimeout(r, Date.parse(first.expires_at!) - Date.now() + 500));
    // The push inside the mint and the push activity's first two attempts (0.5 s apart) fail. With the
    // held token's expiry as the push's deadline (already past), that was the end: container_unreachable.
    containers.failNextPushes(d.container, 3);
  } finally {
    world.gh.clearFailures();
  }
  const second = await containers.waitForPush(d.container, (x) => x.generation === 2, 20_000);
  expect(world.gh.isTokenLive(second.token, rig.repo.full_name, 'write')).toBe(true);
  const s = await h.call<{ status: string }>('GET', `/api/dispatches/${d.dispatchId}`);
  expect(s.body.status).toBe('active');
  const events = await h.call<{ events: Array<{ kind: string }> }>('GET', `/api/dispatches/${d.dispatchId}/events`);
  // All three failures were met: the inline push and two attempts of the push activity.
  expect(events.body.events.filter((e) => e.kind === 'push_failed').length).toBe(3);
});

it('keeps no token in any workflow history or log line', async () => {
  const tokens = world.gh.issuedTokens();
  expect(tokens.length).toBeGreaterThan(5);
  const text = await historiesJson(h, workflowIds);
  expect(text.length).toBeGreaterThan(1000);
  const logText = h.logs.join('');
  for (const t of tokens) {
    expect(text.includes(t)).toBe(false);
    expect(logText.includes(t)).toBe(false);
  }
  for (const c of workflowIds) expect(text).toContain(c.replace('git-token-', '')); // the scan did read those histories
});
