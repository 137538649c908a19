// GET /metrics after real traffic: a GitHub dispatch goes through mint → push → two pulls → a
// refresh whose first attempt GitHub fails → stop (revoked); a GitLab dispatch refreshes its shared
// grant and stops. Every series an operator relies on must show exactly what happened.
import { sha256Hex } from '../../lib/secrets';
import { FakeContainerHost } from '../fakes/container';
import { FakeGitLab } from '../fakes/gitlab';
import { eventually, startHarness, type Harness } from '../helpers/harness';
import { dispatchTo, githubRig, githubWorld, gitlabRig, pull, type GithubWorld } from '../helpers/scenario';
import { parseExposition, sumOf, valueOf, type Exposition } from './prom-text';

const CLIENT = { clientId: 'rc-metrics', clientSecret: 'rc-metrics-secret', redirectUri: 'http://127.0.0.1/integrations/gitlab/callback' };

let world: GithubWorld;
let gl: FakeGitLab;
let containers: FakeContainerHost;
let h: Harness;

beforeAll(async () => {
  world = await githubWorld({ tokenLifetimeSeconds: 10 });
  gl = await FakeGitLab.start();
  gl.accessTokenLifetimeSeconds = 6; // below twice the margin: every mint after the first refreshes the grant
  gl.registerApplication(CLIENT);
  containers = await FakeContainerHost.start();
  h = await startHarness({
    env: {
      ...world.env,
      GITLAB_URL: gl.baseUrl,
      GITLAB_CLIENT_ID: CLIENT.clientId,
      GITLAB_CLIENT_SECRET: CLIENT.clientSecret,
      TOKEN_REFRESH_MARGIN_SECONDS: '4',
      REFRESH_JITTER_MAX_SECONDS: '0.2',
    },
  });
});

afterAll(async () => {
  await h?.close();
  await containers?.close();
  await gl?.close();
  await world?.gh.close();
});

async function stopAndWait(dispatchId: string): Promise<void> {
  expect((await h.call('POST', `/api/dispatches/${dispatchId}/stop`)).status).toBe(202);
  await eventually(
    async () => (await h.call<{ status: string }>('GET', `/api/dispatches/${dispatchId}`)).body.status === 'stopped',
    20_000,
    'stopped',
  );
}

async function githubFlow() {
  const rig = await githubRig(h, world, { repos: 1 });
  const d = await dispatchTo(h, containers, rig.rigId, 'metrics-gh');
  const first = await containers.waitForPush(d.container, (p) => p.generation === 1);
  // The scheduled refresh's first attempt gets a 503; the activity's retry a second later succeeds.
  world.gh.failNext(1, { status: 503, match: (method, path) => method === 'POST' && path.endsWith('/access_tokens') });

  const pulls = [await pull(h, rig.rigId, d.containerToken), await pull(h, rig.rigId, d.containerToken)];
  for (const p of pulls) expect(p.body.token).toBe(first.token);

  const second = await containers.waitForPush(d.container, (p) => p.generation === 2, 20_000);
  const events = await h.core.db.tokenEvent.findMany({ where: { dispatchId: d.dispatchId, kind: 'refresh_failed' } });
  expect(events.map((e) => e.detail?.split(':')[0])).toEqual(['provider_unavailable']);
  await stopAndWait(d.dispatchId);
  expect(world.gh.isTokenLive(second.token)).toBe(false);
}

async function gitlabFlow() {
  const rig = await gitlabRig(h, gl, { clientId: CLIENT.clientId, username: `metrics-${Math.random().toString(36).slice(2, 8)}` });
  const d = await dispatchTo(h, containers, rig.rigId, 'metrics-gl');
  await containers.waitForPush(d.container, (p) => p.generation === 2, 20_000);
  await stopAndWait(d.dispatchId);
}

it('counts mints, refreshes, pushes, pulls, provider errors, grant refreshes, revocations, dispatches and requests', async () => {
  const stoppedBefore = await h.core.db.agentDispatch.count({ where: { status: 'stopped' } });
  // A failed revocation waiting for a retry an hour away (under this file's key: no worker takes it).
  const waiting = `ghs_metrics${Date.now()}`;
  await h.core.revocations.enqueue([
    { token: waiting, expiresAt: new Date(Date.now() + 3600_000), dispatchId: null, reason: 'metrics test', error: 'provider_unavailable' },
  ]);
  await h.core.db
    .$executeRaw`UPDATE pending_revocations SET next_attempt_at = now() + interval '1 hour' WHERE token_sha256 = ${sha256Hex(waiting)}`;
  await Promise.all([githubFlow(), gitlabFlow()]);
  const gitlabRefreshes = gl.stats.refreshes;

  const res = await fetch(`${h.url}/metrics`); // no auth: restricted by network in deployments
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  const m: Exposition = parseExposition(await res.text());
  const stoppedAfter = await h.core.db.agentDispatch.count({ where: { status: 'stopped' } });

  expect(m.types.get('repo_connect_token_mints_total')).toBe('counter');
  expect(m.types.get('repo_connect_push_duration_seconds')).toBe('histogram');
  expect(m.types.get('repo_connect_dispatches')).toBe('gauge');

  // GitHub: one initial mint, one scheduled refresh that failed once and then succeeded.
  const mints = (labels: Record<string, string>) => valueOf(m, 'repo_connect_token_mints_total', labels);
  expect(mints({ provider: 'github', outcome: 'minted', reason: 'initial' })).toBe(1);
  expect(mints({ provider: 'github', outcome: 'minted', reason: 'scheduled' })).toBe(1);
  expect(mints({ provider: 'github', outcome: 'failed', reason: 'scheduled' })).toBe(1);
  expect(valueOf(m, 'repo_connect_provider_errors_total', { provider: 'github', code: 'provider_unavailable' })).toBe(1);
  expect(sumOf(m, 'repo_connect_provider_errors_total')).toBe(1);
  // The refresh finished at least the retry interval (1 s) after its planned time.
  expect(valueOf(m, 'repo_connect_refresh_lateness_seconds_count', { provider: 'github' })).toBe(1);
  expect(valueOf(m, 'repo_connect_refresh_lateness_seconds_sum', { provider: 'github' })).toBeGreaterThanOrEqual(0.9);

  // GitLab: the initial mint and at least one refresh, each refresh a real grant refresh at GitLab.
  expect(mints({ provider: 'gitlab', outcome: 'minted', reason: 'initial' })).toBe(1);
  expect(sumOf(m, 'repo_connect_token_mints_total', { provider: 'gitlab', outcome: 'minted' })).toBeGreaterThanOrEqual(2);
  expect(valueOf(m, 'repo_connect_gitlab_grant_refreshes_total', { outcome: 'ok' })).toBe(gitlabRefreshes);
  expect(gitlabRefreshes).toBeGreaterThanOrEqual(1);
  expect(valueOf(m, 'repo_connect_refresh_lateness_seconds_count', { provider: 'gitlab' })).toBeGreaterThanOrEqual(1);

  // Every pushed generation was acknowledged, and timed.
  const pushes = containers.pushes('metrics-gh').length + containers.pushes('metrics-gl').length;
  expect(valueOf(m, 'repo_connect_push_duration_seconds_count', { outcome: 'acknowledged' })).toBe(pushes);
  expect(valueOf(m, 'repo_connect_push_duration_seconds_bucket', { outcome: 'acknowledged', le: '+Inf' })).toBe(pushes);

  // The first pull loaded the lease from Postgres, the second was served from memory.
  expect(valueOf(m, 'repo_connect_pulls_total', { result: 'miss' })).toBe(1);
  expect(valueOf(m, 'repo_connect_pulls_total', { result: 'hit' })).toBe(1);

  // Stop revokes the GitHub tokens (the current one and the one it replaced, still valid); the
  // GitLab grant is shared, so nothing is revoked there.
  expect(valueOf(m, 'repo_connect_token_revocations_total', { outcome: 'revoked' })).toBe(2);
  expect(valueOf(m, 'repo_connect_token_revocations_total', { outcome: 'not_revocable' })).toBe(1);

  // Sampled from Postgres at scrape time (the database is shared with other test files).
  expect(m.types.get('repo_connect_pending_revocations')).toBe('gauge');
  expect(valueOf(m, 'repo_connect_pending_revocations', { provider: 'github' })).toBeGreaterThanOrEqual(1);
  const stopped = valueOf(m, 'repo_connect_dispatches', { status: 'stopped' })!;
  expect(stopped).toBeGreaterThanOrEqual(stoppedBefore + 2);
  expect(stopped).toBeLessThanOrEqual(stoppedAfter);

  // Request durations by route pattern, never by raw URL.
  const requests = (labels: Record<string, string>) => valueOf(m, 'repo_connect_http_request_duration_seconds_count', labels);
  expect(requests({ route: '/api/rigs/:rig_id/dispatches', method: 'POST', status: '201' })).toBe(2);
  expect(requests({ route: '/api/internal/rigs/:rig_id/git-token', method: 'POST', status: '200' })).toBe(2);
  expect(requests({ route: '/api/dispatches/:dispatch_id/stop', method: 'POST', status: '202' })).toBe(2);
  expect(m.samples.some((s) => /[0-9a-f]{8}-[0-9a-f]{4}-/.test(s.labels.route ?? ''))).toBe(false);
}, 90_000);
