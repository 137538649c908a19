// Records the replay corpus: drives every path of the git-token workflow through the real API,
// worker, dev server and Postgres with the fakes at the HTTP edge, then saves each path's histories
// (every run of every workflow involved) as one JSON file. Run by `npm run replay:record`
// (scripts/record-replay-histories.ts), never by `npm test`: the names end in .scenarios.ts.
// Each scenario checks that its path really happened (the events it needs are in the history) and
// that no secret any fake issued, nor any container token, appears in it.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { temporal } from '@temporalio/proto';
import { FakeContainerHost } from '../fakes/container';
import { FakeGitLab } from '../fakes/gitlab';
import { GITLAB_SCOPES } from '../../lib/providers/gitlab-fns';
import { eventually, newOwner, startHarness, type Harness } from '../helpers/harness';
import { allText, dispatchTo, githubRig, githubWorld, gitlabRig, pull, registerGithubAgain, type GithubWorld } from '../helpers/scenario';
import { refreshNowUpdate, statusQuery } from '../../workflows/git-token-workflow';
import { historyToObject, secretsInHistory, type CorpusFile } from './corpus';

const OUT = process.env.REPLAY_RECORD_DIR;
const RECORDED = JSON.parse(process.env.REPLAY_RECORD_META ?? '{}') as CorpusFile['recorded'];
const CLIENT = { clientId: 'rc-app', clientSecret: 'rc-secret', redirectUri: 'http://127.0.0.1/integrations/gitlab/callback' };
const LIFETIME = 8;

let world: GithubWorld;
let gl: FakeGitLab;
let h: Harness;
let containers: FakeContainerHost;
/** Secrets handed out outside the fakes (town tokens, container tokens), for the scan. */
const secrets: string[] = [];

beforeAll(async () => {
  if (!OUT) throw new Error('REPLAY_RECORD_DIR is not set: run `npm run replay:record`');
  mkdirSync(OUT, { recursive: true });
  world = await githubWorld({ tokenLifetimeSeconds: LIFETIME });
  gl = await FakeGitLab.start();
  gl.accessTokenLifetimeSeconds = LIFETIME;
  gl.registerApplication(CLIENT);
  containers = await FakeContainerHost.start();
  // Short lifetimes, three cycles per run (so a few cycles cross continue-as-new), a 4 s recheck
  // after a permanent failure and a 5 s push deadline for static tokens keep every history small.
  h = await startHarness({
    env: {
      ...world.env,
      GITLAB_URL: gl.baseUrl,
      GITLAB_CLIENT_ID: CLIENT.clientId,
      GITLAB_CLIENT_SECRET: CLIENT.clientSecret,
      TOKEN_REFRESH_MARGIN_SECONDS: '3',
      REFRESH_JITTER_MAX_SECONDS: '0.5',
      GITLAB_PROJECT_TOKEN_ROTATE_SECONDS: '8',
      GITLAB_PROJECT_TOKEN_RETRY_SECONDS: '3',
    },
    workflowDefaults: { cyclesPerRun: 3, recheckSeconds: 4, staticPushDeadlineSeconds: 5 },
  });
});

afterAll(async () => {
  await h?.close();
  await containers?.close();
  await world?.gh.close();
  await gl?.close();
});

type Started = { dispatch_id: string; workflow_id: string; container_token: string };
type Status = { status: string; generation: number; last_error: { code: string } | null };
const status = async (id: string) => (await h.call<Status>('GET', `/api/dispatches/${id}`)).body;
const waitStatus = (id: string, want: string, ms = 30_000) =>
  eventually(async () => ((await status(id)).status === want ? true : null), ms, `${id} ${want}`);
const stop = (dispatchId: string) => h.call('POST', `/api/dispatches/${dispatchId}/stop`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const secret = (label: string) => {
  const s = `${label}-${Math.random().toString(36).slice(2)}${Math.random().toString(36).slice(2)}`;
  secrets.push(s);
  return s;
};
const dispatch = async (rigId: string, name: string) => {
  const d = await dispatchTo(h, containers, rigId, name);
  secrets.push(d.containerToken);
  return d;
};

type Event = temporal.api.history.v1.IHistoryEvent;
type Run = { workflowId: string; runId: string; history: temporal.api.history.v1.IHistory };

/** Every run of `workflowId`, first to last, once its last run has closed (walks the continue-as-new chain back). */
async function runsOf(workflowId: string): Promise<Run[]> {
  await h.core.temporal.workflow.getHandle(workflowId).result();
  const runs: Run[] = [];
  let runId: string | undefined = (await h.core.temporal.workflow.getHandle(workflowId).describe()).runId;
  while (runId) {
    const history = await h.core.temporal.workflow.getHandle(workflowId, runId).fetchHistory();
    runs.unshift({ workflowId, runId, history });
    runId = history.events?.[0]?.workflowExecutionStartedEventAttributes?.continuedExecutionRunId || undefined;
  }
  return runs;
}

const eventsOf = (runs: Run[]): Event[] => runs.flatMap((r) => r.history.events ?? []);
const signals = (runs: Run[], name: string) =>
  eventsOf(runs).filter((e) => e.workflowExecutionSignaledEventAttributes?.signalName === name);

/** Saves one path's runs after checking they hold no secret, in any form the scan knows. */
async function save(path: string, description: string, workflowIds: string[], check: (runs: Run[]) => void): Promise<void> {
  const runs = (await Promise.all(workflowIds.map(runsOf))).flat();
  check(runs);
  const text = allText(runs.map((r) => r.history)).join('\n');
  const issued = [...world.gh.issuedTokens(), ...gl.issuedTokens(), ...secrets];
  expect(issued.filter((t) => text.includes(t)).length).toBe(0);
  expect(runs.flatMap((r) => secretsInHistory(r.history))).toEqual([]);
  const file: CorpusFile = {
    path,
    description,
    recorded: RECORDED,
    runs: runs.map((r) => ({ workflowId: r.workflowId, runId: r.runId, history: historyToObject(r.history) as never })),
  };
  writeFileSync(join(OUT!, `${path}.json`), `${JSON.stringify(file)}\n`);
}

it('github-multi-cycle: five refreshes across continue-as-new, then stop', async () => {
  const rig = await githubRig(h, world, { repos: 2 });
  const d = await dispatch(rig.rigId, 'rec-gh-cycles');
  await containers.waitForPush(d.container, (p) => p.generation === 5, 60_000);
  await stop(d.dispatchId);
  await save(
    'github-multi-cycle',
    'GitHub installation token refreshed five times (3 cycles per run: continue-as-new), then stop',
    [d.workflowId],
    (runs) => {
      expect(runs.length).toBeGreaterThanOrEqual(2);
      expect(signals(runs, 'stop')).toHaveLength(1);
    },
  );
}, 120_000);

it('pull-refresh-now: a pull of a stale lease mints through the refreshNow update; a satisfied one does not', async () => {
  const rig = await githubRig(h, world, { repos: 1 });
  const d = await dispatch(rig.rigId, 'rec-gh-pull');
  await containers.waitForPush(d.container, (p) => p.generation === 1);
  const handle = h.core.temporal.workflow.getHandle(d.workflowId);
  // What the pull route does when its cached lease has less than the margin left.
  const view = await handle.executeUpdate(refreshNowUpdate, { args: [{ staleGeneration: 1 }] });
  expect(view.generation).toBe(2);
  expect((await pull(h, rig.rigId, d.containerToken)).status).toBe(200);
  await handle.executeUpdate(refreshNowUpdate, { args: [{ staleGeneration: 1 }] }); // already newer: no mint
  await stop(d.dispatchId);
  await waitStatus(d.dispatchId, 'stopped');
  await save(
    'pull-refresh-now',
    'GitHub: refreshNow forces a mint (as a pull of a stale lease does), a satisfied refreshNow, an HTTP pull, stop',
    [d.workflowId],
    (runs) => {
      expect(eventsOf(runs).filter((e) => e.workflowExecutionUpdateCompletedEventAttributes)).toHaveLength(2);
    },
  );
}, 120_000);

it('gitlab-shared-refresh: two dispatches share a grant; one refreshes it, the other is signalled and re-pushes', async () => {
  const rig = await gitlabRig(h, gl, { clientId: CLIENT.clientId, username: 'carol' });
  const a = await dispatch(rig.rigId, 'rec-gl-a');
  const b = await dispatch(rig.rigId, 'rec-gl-b');
  await eventually(
    async () => [a, b].every((d) => new Set(containers.pushes(d.container).map((p) => p.token)).size >= 3),
    45_000,
    'three tokens each',
  );
  await stop(a.dispatchId);
  await stop(b.dispatchId);
  await save(
    'gitlab-shared-refresh',
    'GitLab: one grant shared by two dispatches, refreshed (rotated) across expiries; the other dispatch is signalled (credentialsChanged) and re-pushes; stop',
    [a.workflowId, b.workflowId],
    (runs) => {
      expect(signals(runs, 'credentialsChanged').length).toBeGreaterThanOrEqual(1);
    },
  );
}, 120_000);

it('gitlab-project-token: the grant stands in for a Developer (account), a role upgrade switches to a project token (repository), one dispatch rotates it and the other is signalled', async () => {
  const { user, project, rigId } = await gitlabRig(h, gl, {
    clientId: CLIENT.clientId,
    username: 'dora',
    projects: [{ path: 'app', role: 'developer' }],
    scopes: GITLAB_SCOPES,
  });
  const a = await dispatch(rigId, 'rec-pat-a');
  await containers.waitForPush(a.container, (p) => p.generation === 1);
  gl.setRole(user.id, project.id, 'maintainer');
  const first = await containers.waitForPush(a.container, (p) => gl.isProjectTokenLive(p.token), 30_000);
  const b = await dispatch(rigId, 'rec-pat-b');
  await containers.waitForPush(b.container, (p) => p.token === first.token);
  const rotations = gl.projectTokens.stats.rotated;
  await eventually(async () => gl.projectTokens.stats.rotated > rotations, 30_000, 'a rotation');
  const fresh = gl.projectTokens.all().find((t) => t.projectId === project.id && gl.projectTokens.isLive(t))!;
  await Promise.all([a, b].map((d) => containers.waitForPush(d.container, (p) => p.token === fresh.token, 10_000)));
  await stop(a.dispatchId);
  await stop(b.dispatchId);
  await save(
    'gitlab-project-token',
    'GitLab: a Developer gets the grant (CredentialScope account); after the role upgrade the next mint makes a project access token (CredentialScope repository, patch marker); a second dispatch shares it; one rotates it and the other is signalled (credentialsChanged) and re-pushes; stop',
    [a.workflowId, b.workflowId],
    (runs) => {
      const scopes = eventsOf(runs).flatMap((e) => {
        const field = e.upsertWorkflowSearchAttributesEventAttributes?.searchAttributes?.indexedFields?.CredentialScope;
        return field?.data ? [Buffer.from(field.data).toString('utf8')] : [];
      });
      expect(scopes).toEqual(expect.arrayContaining(['"account"', '"repository"']));
      expect(eventsOf(runs).some((e) => e.markerRecordedEventAttributes?.markerName === 'core_patch')).toBe(true);
      expect(signals(runs, 'credentialsChanged').length).toBeGreaterThanOrEqual(1);
    },
  );
}, 120_000);

it('town-token: push, pull, git-auth change (credentialsChanged), stop', async () => {
  const t = await h.call<{ id: string }>('POST', '/api/towns', { name: 'static', owner_id: newOwner() });
  await h.call('PUT', `/api/towns/${t.body.id}/git-auth`, { tokens: [{ host: 'git.example.com', token: secret('town-one') }] });
  const rig = await h.call<{ id: string }>('POST', `/api/towns/${t.body.id}/rigs`, {
    name: 'r',
    git_url: 'https://git.example.com/a/b.git',
  });
  const d = await dispatch(rig.body.id, 'rec-town');
  await containers.waitForPush(d.container, (p) => p.generation === 1);
  expect((await pull(h, rig.body.id, d.containerToken)).status).toBe(200);
  await h.call('PUT', `/api/towns/${t.body.id}/git-auth`, {
    tokens: [{ host: 'git.example.com', token: secret('town-two'), username: 'bot' }],
  });
  await containers.waitForPush(d.container, (p) => p.generation === 2);
  await stop(d.dispatchId);
  await save(
    'town-token',
    'Static town token: pushed once, a pull, pushed again after the git-auth changed (credentialsChanged), stop',
    [d.workflowId],
    (runs) => {
      expect(signals(runs, 'credentialsChanged')).toHaveLength(1);
    },
  );
}, 120_000);

it('credentials-changed: a GitHub rig disconnected falls back to the town token, then stop', async () => {
  const rig = await githubRig(h, world, { repos: 1 });
  const host = new URL(rig.repo.clone_url as string).host;
  const fallback = secret('town-fallback');
  await h.call('PUT', `/api/towns/${rig.townId}/git-auth`, { tokens: [{ host, token: fallback }] });
  const d = await dispatch(rig.rigId, 'rec-switch');
  await containers.waitForPush(d.container, (p) => p.generation === 1);
  await h.call('PATCH', `/api/rigs/${rig.rigId}`, { platform_integration_id: null });
  await containers.waitForPush(d.container, (p) => p.token === fallback, 10_000);
  await sleep(1000);
  await stop(d.dispatchId);
  await save(
    'credentials-changed',
    'GitHub rig disconnected (credentialsChanged): the dispatch switches to the town token, then stop',
    [d.workflowId],
    (runs) => {
      expect(signals(runs, 'credentialsChanged')).toHaveLength(1);
    },
  );
}, 120_000);

it('no-credentials: credential_error, a pull while waiting, the recheck timer, then credentials arrive', async () => {
  const bare = await h.call<{ id: string }>('POST', '/api/towns', { name: 'bare', owner_id: newOwner() });
  const rig = await h.call<{ id: string }>('POST', `/api/towns/${bare.body.id}/rigs`, {
    name: 'r',
    git_url: 'https://other.example.com/a/b.git',
  });
  const d = await dispatch(rig.body.id, 'rec-none');
  await waitStatus(d.dispatchId, 'credential_error');
  expect((await pull(h, rig.body.id, d.containerToken)).status).toBe(502); // waiting: the update answers at once
  await sleep(5000); // the 4 s recheck fires once
  await h.call('PUT', `/api/towns/${bare.body.id}/git-auth`, { tokens: [{ host: 'other.example.com', token: secret('late') }] });
  await containers.waitForPush(d.container, (p) => p.generation === 1, 10_000);
  await waitStatus(d.dispatchId, 'active');
  await stop(d.dispatchId);
  await save(
    'no-credentials',
    'No credentials: credential_error, a pull answered without minting, the recheck timer, then a town token (credentialsChanged), stop',
    [d.workflowId],
    (runs) => {
      expect(eventsOf(runs).some((e) => e.timerFiredEventAttributes)).toBe(true);
    },
  );
}, 120_000);

it('suspended-resumed: the installation is suspended (credential_error), then active again', async () => {
  const rig = await githubRig(h, world, { repos: 1 });
  const d = await dispatch(rig.rigId, 'rec-suspend');
  await containers.waitForPush(d.container, (p) => p.generation === 1);
  world.gh.suspend(rig.installationId);
  await waitStatus(d.dispatchId, 'credential_error');
  await sleep(5000); // one recheck while suspended
  world.gh.unsuspend(rig.installationId);
  // Registering it again, as the unsuspend webhook does, signals the dispatch.
  await registerGithubAgain(h, rig);
  await containers.waitForPush(d.container, (p) => p.generation === 2, 15_000);
  await stop(d.dispatchId);
  await save(
    'suspended-resumed',
    'GitHub installation suspended at a refresh (credential_error, recheck timer), re-activated (credentialsChanged), stop',
    [d.workflowId],
    (runs) => {
      expect(signals(runs, 'credentialsChanged').length).toBeGreaterThanOrEqual(1);
    },
  );
}, 120_000);

it('provider-outage: GitHub answers 503 over the refresh (degraded), then recovers', async () => {
  world.gh.tokenLifetimeSeconds = 12;
  try {
    const rig = await githubRig(h, world, { repos: 1 });
    const d = await dispatch(rig.rigId, 'rec-outage');
    const first = await containers.waitForPush(d.container, (p) => p.generation === 1);
    await sleep(Math.max(0, Date.parse(first.expires_at!) - 4500 - Date.now()));
    world.gh.setOutage(503);
    await waitStatus(d.dispatchId, 'degraded', 10_000);
    await sleep(2500);
    world.gh.setOutage(null);
    await containers.waitForPush(d.container, (p) => p.generation === 2, 15_000);
    await waitStatus(d.dispatchId, 'active');
    await stop(d.dispatchId);
    await save(
      'provider-outage',
      'GitHub 503 over a refresh: degraded with backoff retries inside the margin, then active again, stop',
      [d.workflowId],
      () => undefined,
    );
  } finally {
    world.gh.tokenLifetimeSeconds = LIFETIME;
    world.gh.setOutage(null);
  }
}, 120_000);

it('outage-at-start: GitHub answers 503 to the first mint (still starting), then recovers', async () => {
  const rig = await githubRig(h, world, { repos: 1 });
  world.gh.setOutage(503);
  try {
    const d = await dispatch(rig.rigId, 'rec-outage-start');
    // The mint's own quick retries gave up: the workflow saw the failure.
    const handle = h.core.temporal.workflow.getHandle(d.workflowId);
    await eventually(async () => ((await handle.query(statusQuery)).lastError !== null ? true : null), 15_000, 'a failed first mint');
    world.gh.setOutage(null);
    await containers.waitForPush(d.container, (p) => p.generation === 1, 15_000);
    await stop(d.dispatchId);
    await save(
      'outage-at-start',
      'GitHub 503 to the first mint: starting (patch starting-until-first-token) with backoff retries, then active, stop',
      [d.workflowId],
      (runs) => {
        const markers = eventsOf(runs).filter((e) => e.markerRecordedEventAttributes?.markerName === 'core_patch');
        expect(markers.length).toBeGreaterThanOrEqual(1);
      },
    );
  } finally {
    world.gh.setOutage(null);
  }
}, 120_000);

it('push-retry: pushes fail with 500 then recover; a later stop interrupts a retried push', async () => {
  const rig = await githubRig(h, world, { repos: 1 });
  const name = 'rec-flaky';
  const url = containers.add(name);
  containers.setMode(name, 'error');
  const res = await h.call<Started>('POST', `/api/rigs/${rig.rigId}/dispatches`, { container_url: url });
  secrets.push(res.body.container_token);
  containers.setBearer(name, res.body.container_token);
  await sleep(2500);
  containers.setMode(name, 'ok');
  await containers.waitForPush(name, (p) => p.generation >= 1, 15_000);
  containers.setMode(name, 'error');
  await eventually(async () => ((await status(res.body.dispatch_id)).generation >= 2 ? true : null), 15_000, 'generation 2');
  await sleep(1500);
  await stop(res.body.dispatch_id);
  await waitStatus(res.body.dispatch_id, 'stopped');
  await save(
    'push-retry',
    'Container answers 500: the push activity retries, succeeds, fails again at the next refresh and is cancelled by stop',
    [res.body.workflow_id],
    (runs) => {
      expect(eventsOf(runs).some((e) => e.activityTaskCancelRequestedEventAttributes)).toBe(true);
    },
  );
}, 120_000);

it('container-gone: the container answers 410, the dispatch ends stopped', async () => {
  const rig = await githubRig(h, world, { repos: 1 });
  const d = await dispatch(rig.rigId, 'rec-gone');
  await containers.waitForPush(d.container, (p) => p.generation === 1);
  containers.setMode(d.container, 'gone');
  await waitStatus(d.dispatchId, 'stopped');
  await save(
    'container-gone',
    'Container answers 410 at the next push: the dispatch ends stopped, token revoked',
    [d.workflowId],
    () => undefined,
  );
}, 120_000);

it('container-unreachable: pushes dropped until the token (or the static deadline) runs out', async () => {
  const rig = await githubRig(h, world, { repos: 1 });
  const ghUrl = containers.add('rec-drop');
  containers.setMode('rec-drop', 'drop');
  const gh = await h.call<Started>('POST', `/api/rigs/${rig.rigId}/dispatches`, { container_url: ghUrl });
  const t = await h.call<{ id: string }>('POST', '/api/towns', { name: 'static', owner_id: newOwner() });
  await h.call('PUT', `/api/towns/${t.body.id}/git-auth`, { tokens: [{ host: 'git.example.com', token: secret('town-x') }] });
  const trig = await h.call<{ id: string }>('POST', `/api/towns/${t.body.id}/rigs`, {
    name: 'r',
    git_url: 'https://git.example.com/a/c.git',
  });
  const url = containers.add('rec-town-drop');
  containers.setMode('rec-town-drop', 'drop');
  const town = await h.call<Started>('POST', `/api/rigs/${trig.body.id}/dispatches`, { container_url: url });
  secrets.push(gh.body.container_token, town.body.container_token);
  await waitStatus(gh.body.dispatch_id, 'container_unreachable', 40_000);
  await waitStatus(town.body.dispatch_id, 'container_unreachable', 40_000);
  await save(
    'container-unreachable',
    'Every push dropped: a GitHub token pushed until it expires, a static town token until the static deadline; both end container_unreachable',
    [gh.body.workflow_id, town.body.workflow_id],
    () => undefined,
  );
}, 120_000);
