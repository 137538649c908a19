// A rig's GitLab project token is revoked when the rig lets go of it: disconnect, reconnect to
// another project, DELETE /api/rigs/:id (refused while a dispatch runs), and the worker's idle
// sweep. Each time GitLab sees the DELETE and git no longer accepts the token. Real API, worker,
// Temporal and Postgres; fake GitLab and containers.
import { GITLAB_SCOPES } from '../../lib/providers/gitlab-fns';
import { FakeContainerHost } from '../fakes/container';
import { FakeGitLab } from '../fakes/gitlab';
import { eventually, startHarness, type Harness } from '../helpers/harness';
import { credentialsChangedReasons, dispatchTo, gitlabRig as scenarioGitlabRig, historiesJson, type Dispatched } from '../helpers/scenario';

const CLIENT = { clientId: 'rc-revoke', clientSecret: 'rc-revoke-secret', redirectUri: 'http://127.0.0.1/integrations/gitlab/callback' };

let gl: FakeGitLab;
let containers: FakeContainerHost;
const workflowIds: string[] = [];
const harnesses: Harness[] = [];

beforeAll(async () => {
  gl = await FakeGitLab.start();
  gl.registerApplication(CLIENT);
  containers = await FakeContainerHost.start();
});

afterAll(async () => {
  for (const h of harnesses) await h.close();
  await containers?.close();
  await gl?.close();
});

async function harness(env: Record<string, string> = {}): Promise<Harness> {
  const h = await startHarness({
    env: { GITLAB_URL: gl.baseUrl, GITLAB_CLIENT_ID: CLIENT.clientId, GITLAB_CLIENT_SECRET: CLIENT.clientSecret, ...env },
  });
  harnesses.push(h);
  return h;
}

/** A GitLab account with two projects of its own, and a rig on the first. */
async function gitlabRig(h: Harness, username: string) {
  const r = await scenarioGitlabRig(h, gl, {
    clientId: CLIENT.clientId,
    username,
    projects: [{ path: 'app' }, { path: 'lib' }],
    scopes: GITLAB_SCOPES,
  });
  return { ...r, other: r.projects[1] };
}

/** A dispatch of the rig and the project token its container received first. */
async function dispatched(h: Harness, rigId: string, name: string): Promise<Dispatched & { token: string }> {
  const d = await dispatchTo(h, containers, rigId, name);
  workflowIds.push(d.workflowId);
  const first = await containers.waitForPush(d.container, (p) => p.generation === 1);
  expect(gl.isProjectTokenLive(first.token)).toBe(true);
  return { ...d, token: first.token };
}

/** GitLab saw the token's DELETE, and git refuses it on its project. */
function revokedAtGitlab(token: string, projectPath: string) {
  const record = gl.projectTokens.find(token)!;
  expect(gl.requests).toContainEqual(
    expect.objectContaining({ method: 'DELETE', path: `/api/v4/projects/${record.projectId}/access_tokens/${record.id}`, status: 204 }),
  );
  expect(gl.gitAccess(token, projectPath, 'read')).toBe(false);
}

async function stopped(h: Harness, d: Dispatched) {
  await h.call('POST', `/api/dispatches/${d.dispatchId}/stop`);
  await eventually(async () => (await h.call<{ status: string }>('GET', `/api/dispatches/${d.dispatchId}`)).body.status === 'stopped');
}

describe('letting go of a rig', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await harness();
  });

  it('revokes on disconnect', async () => {
    const { project, rigId } = await gitlabRig(h, 'disconnecter');
    const d = await dispatched(h, rigId, 'rv-disconnect');
    expect((await h.call('PATCH', `/api/rigs/${rigId}`, { platform_integration_id: null })).status).toBe(200);
    revokedAtGitlab(d.token, project.path_with_namespace);
    // The dispatch has nothing to fall back on (no town token) and says so.
    await eventually(async () => {
      const v = await h.call<{ last_error: { code: string } | null }>('GET', `/api/dispatches/${d.dispatchId}`);
      return v.body.last_error?.code === 'no_credentials';
    });
    await stopped(h, d);
  });

  it('revokes on reconnecting to another project, and the running dispatch gets a token for the new one', async () => {
    const { project, other, integrationId, rigId } = await gitlabRig(h, 'mover');
    const d = await dispatched(h, rigId, 'rv-move');
    const res = await h.call('PATCH', `/api/rigs/${rigId}`, { platform_integration_id: integrationId, repository_id: other.id });
    expect(res.status).toBe(200);
    revokedAtGitlab(d.token, project.path_with_namespace);
    const next = await containers.waitForPush(d.container, (p) => p.generation > 1);
    expect(gl.gitAccess(next.token, other.path_with_namespace, 'write')).toBe(true);
    expect(gl.gitAccess(next.token, project.path_with_namespace, 'read')).toBe(false);
    // The rig's only dispatch made both tokens and was told of neither: it was told of the
    // reconnect only. (A mint that signalled its own run held its workflow task for 8 s, and the
    // PATCH with it: a signal waits at the server while the run's task is a retried one.)
    expect(await credentialsChangedReasons(h, d.workflowId)).toEqual(['rig connection changed']);
    await stopped(h, d);
  });

  it('refuses DELETE while a dispatch runs, then deletes the rig and revokes its token', async () => {
    const { project, integrationId, rigId } = await gitlabRig(h, 'deleter');
    const d = await dispatched(h, rigId, 'rv-delete');
    const busy = await h.call<{ error: { code: string; field: string } }>('DELETE', `/api/rigs/${rigId}`);
    expect(busy.status).toBe(409);
    expect(busy.body.error).toMatchObject({ code: 'rig_has_running_dispatches', field: 'rig_id' });
    expect(gl.isProjectTokenLive(d.token)).toBe(true);
    await stopped(h, d);
    expect(gl.isProjectTokenLive(d.token)).toBe(true); // a dispatch's stop revokes nothing shared
    const gone = await h.call('DELETE', `/api/rigs/${rigId}`);
    expect(gone.status).toBe(204);
    revokedAtGitlab(d.token, project.path_with_namespace);
    expect((await h.call('GET', `/api/rigs/${rigId}`)).status).toBe(404);
    expect((await h.call('DELETE', `/api/rigs/${rigId}`)).status).toBe(404);
    expect(await h.core.db.rigProjectToken.count({ where: { integrationId } })).toBe(0); // nothing left to revoke
  });
});

describe('the idle sweep in the worker', () => {
  it('revokes the token of a rig without a running dispatch for the idle time, and the next dispatch gets a new one', async () => {
    const h = await harness({ GITLAB_PROJECT_TOKEN_IDLE_SECONDS: '2' });
    const { project, rigId } = await gitlabRig(h, 'idler');
    const d = await dispatched(h, rigId, 'rv-idle');
    await new Promise((r) => setTimeout(r, 3000));
    expect(gl.isProjectTokenLive(d.token)).toBe(true); // running: never idle
    await stopped(h, d);
    await eventually(async () => !gl.isProjectTokenLive(d.token), 10_000, 'the idle revocation');
    revokedAtGitlab(d.token, project.path_with_namespace);
    // GitLab answers inside the sweep's transaction, which then commits.
    const row = await eventually(async () => {
      const r = await h.core.db.rigProjectToken.findUniqueOrThrow({ where: { rigId } });
      return r.status === 'revoked' ? r : null;
    });
    expect(row).toMatchObject({ tokenEnc: null, revokedAt: expect.any(Date) });
    const again = await dispatched(h, rigId, 'rv-idle-2');
    expect(again.token).not.toBe(d.token);
    await stopped(h, again);
  }, 60_000);
});

it('keeps no project token in any workflow history or log line', async () => {
  const tokens = gl.issuedTokens();
  expect(tokens.filter((t) => t.startsWith('glpat-')).length).toBeGreaterThanOrEqual(5);
  const text = [await historiesJson(harnesses[0], workflowIds), ...harnesses.map((h) => h.logs.join(''))].join('\n');
  for (const t of tokens) expect(text.includes(t)).toBe(false);
});
