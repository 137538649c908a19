// A GitLab rig's dispatches share one project access token: rotated by exactly one of them however
// many run, the new token pushed to all within seconds (rotation kills the old one at once), pulls
// returning it; where GitLab refuses (a Developer), the grant stands in and the dispatch says
// `account` and why, until a role upgrade switches it to `repository` without a restart. Real API,
// worker, Temporal and Postgres; fake GitLab and containers.
import { GITLAB_SCOPES } from '../../lib/providers/gitlab-fns';
import { FakeContainerHost } from '../fakes/container';
import { FakeGitLab, type Role } from '../fakes/gitlab';
import { ADMIN, eventually, startHarness, type Harness } from '../helpers/harness';
import { dispatchTo, gitlabRig as scenarioGitlabRig, historiesJson, pull, type Dispatched } from '../helpers/scenario';
import { CredentialScopeKey } from '../../workflows/search-attributes';

const ROTATE = 16;
const RETRY = 3;
const CLIENT = { clientId: 'rc-pat', clientSecret: 'rc-pat-secret', redirectUri: 'http://127.0.0.1/integrations/gitlab/callback' };

let gl: FakeGitLab;
let h: Harness;
let containers: FakeContainerHost;
const workflowIds: string[] = [];

interface DispatchBody {
  status: string;
  generation: number;
  credential_source: string;
  credential_scope: string | null;
  credential_scope_reason: string | null;
}

beforeAll(async () => {
  gl = await FakeGitLab.start();
  gl.registerApplication(CLIENT);
  containers = await FakeContainerHost.start();
  h = await startHarness({
    env: {
      GITLAB_URL: gl.baseUrl,
      GITLAB_CLIENT_ID: CLIENT.clientId,
      GITLAB_CLIENT_SECRET: CLIENT.clientSecret,
      GITLAB_PROJECT_TOKEN_ROTATE_SECONDS: String(ROTATE),
      GITLAB_PROJECT_TOKEN_RETRY_SECONDS: String(RETRY),
      TOKEN_REFRESH_MARGIN_SECONDS: '3',
      REFRESH_JITTER_MAX_SECONDS: '2',
    },
  });
});

afterAll(async () => {
  await h?.close();
  await containers?.close();
  await gl?.close();
});

/** A GitLab user with a current grant (api scope) on their own project, as `role`, and a rig on it. */
const gitlabRig = (username: string, role: Role = 'owner') =>
  scenarioGitlabRig(h, gl, { clientId: CLIENT.clientId, username, projects: [{ path: 'app', role }], scopes: GITLAB_SCOPES });

const dispatchView = async (id: string) => (await h.call<DispatchBody>('GET', `/api/dispatches/${id}`)).body;

/** The dispatch workflow's CredentialScope search attribute, once it is `want`. */
const scopeAttribute = (workflowId: string, want: string) =>
  eventually(
    async () => (await h.core.temporal.workflow.getHandle(workflowId).describe()).typedSearchAttributes.get(CredentialScopeKey) === want,
    10_000,
    `CredentialScope = ${want}`,
  );

/** The dashboard's rig page as a signed-in browser gets it. */
async function rigPage(rigId: string): Promise<string> {
  const res = await fetch(`${h.url}/rigs/${rigId}`, { headers: { authorization: `Bearer ${ADMIN}` } });
  expect(res.status).toBe(200);
  return res.text();
}

it('rotates once under twenty dispatches of one rig, and every container ends holding the live new token', async () => {
  const { project, rigId } = await gitlabRig('rotator');
  const before = { ...gl.projectTokens.stats };
  const ds: Dispatched[] = [];
  await Promise.all(
    Array.from({ length: 20 }, async (_, i) => {
      const d = await dispatchTo(h, containers, rigId, `pat-${i}`);
      ds.push(d);
      workflowIds.push(d.workflowId);
    }),
  );
  const first = await containers.waitForPush(ds[0].container, (p) => p.generation === 1);
  await Promise.all(ds.map((d) => containers.waitForPush(d.container, (p) => p.token === first.token)));
  expect(gl.projectTokens.stats.created - before.created).toBe(1); // one token for the rig, not one per dispatch
  expect(gl.gitAccess(first.token, project.path_with_namespace, 'write')).toBe(true);
  const view = await dispatchView(ds[0].dispatchId);
  expect(view).toMatchObject({ credential_source: 'integration', credential_scope: 'repository', credential_scope_reason: null });

  // The first rotation: every container gets the new token within seconds of the rotation.
  const rotatedAt = await eventually(async () => gl.projectTokens.stats.rotated > before.rotated && Date.now(), 30_000, 'a rotation');
  const fresh = await eventually(
    async () => gl.projectTokens.all().find((t) => t.projectId === project.id && gl.projectTokens.isLive(t)),
    5_000,
    'the rotated token',
  );
  await Promise.all(ds.map((d) => containers.waitForPush(d.container, (p) => p.token === fresh.token, 10_000)));
  expect(Date.now() - rotatedAt).toBeLessThan(10_000);
  expect(gl.projectTokens.stats.rotated - before.rotated).toBe(1);
  expect(gl.isProjectTokenLive(first.token)).toBe(false);
  for (const d of ds) expect(gl.isProjectTokenLive(containers.latest(d.container)!.token)).toBe(true);
  expect(containers.latest(ds[0].container)!.username).toBe('oauth2');
  const pulled = await pull(h, rigId, ds[3].containerToken);
  expect(pulled.body.token).toBe(fresh.token);

  // Stopping a dispatch revokes nothing shared.
  await h.call('POST', `/api/dispatches/${ds[0].dispatchId}/stop`);
  await eventually(async () => (await dispatchView(ds[0].dispatchId)).status === 'stopped');
  expect(gl.isProjectTokenLive(fresh.token)).toBe(true);
  for (const d of ds.slice(1)) await h.call('POST', `/api/dispatches/${d.dispatchId}/stop`);
  await eventually(async () => (await Promise.all(ds.map((d) => dispatchView(d.dispatchId)))).every((v) => v.status === 'stopped'));
}, 90_000);

it('falls back to the grant for a Developer and says why, then switches to a project token after the role upgrade', async () => {
  gl.accessTokenLifetimeSeconds = 8; // the grant's refreshes are this dispatch's mints
  const { user, project, rigId } = await gitlabRig('developer', 'developer');
  gl.accessTokenLifetimeSeconds = 7200;
  const d = await dispatchTo(h, containers, rigId, 'pat-dev');
  workflowIds.push(d.workflowId);
  const first = await containers.waitForPush(d.container, (p) => p.generation === 1);
  expect(gl.isAccessTokenLive(first.token)).toBe(true); // the account-wide grant
  const view = await eventually(async () => {
    const v = await dispatchView(d.dispatchId);
    return v.credential_scope === 'account' ? v : null;
  });
  expect(view.credential_scope_reason).toMatch(/Maintainer or Owner role/);
  const rig = await h.call<{ credential_scope: string; credential_scope_reason: string; project_token_state: { status: string } }>(
    'GET',
    `/api/rigs/${rigId}`,
  );
  expect(rig.body).toMatchObject({ credential_scope: 'account', project_token_state: { status: 'fallback' } });
  expect(rig.body.credential_scope_reason).toBe(view.credential_scope_reason);
  const page = await rigPage(rigId);
  expect(page).toContain('data-credential-scope="account"');
  expect(page).toMatch(
    /The GitLab grant stands in: GitLab refused a project access token: the connected account needs the Maintainer or Owner role/,
  );
  expect(page).toContain(`<tr data-dispatch="${d.dispatchId}">`);
  expect(page).toMatch(new RegExp(`data-dispatch-scope="account"><span class="badge warn" data-scope="account">whole account</span>`));
  await scopeAttribute(d.workflowId, 'account');

  gl.setRole(user.id, project.id, 'maintainer');
  // The first mint after the retry interval makes the token and pushes it; nothing is restarted.
  const switched = await containers.waitForPush(d.container, (p) => gl.isProjectTokenLive(p.token), 30_000);
  expect(gl.gitAccess(switched.token, project.path_with_namespace, 'write')).toBe(true);
  expect(await dispatchView(d.dispatchId)).toMatchObject({ credential_scope: 'repository', credential_scope_reason: null });
  expect((await h.call<{ credential_scope: string }>('GET', `/api/rigs/${rigId}`)).body.credential_scope).toBe('repository');
  expect(await rigPage(rigId)).toContain('data-credential-scope="repository"');
  await scopeAttribute(d.workflowId, 'repository');
  await h.call('POST', `/api/dispatches/${d.dispatchId}/stop`);
}, 60_000);

it('gives a read rig a read_repository token; a change of access revokes it and the running dispatch gets one of the new scope', async () => {
  const { project, rigId } = await scenarioGitlabRig(h, gl, {
    clientId: CLIENT.clientId,
    username: 'reader',
    projects: [{ path: 'app', role: 'owner' }],
    scopes: GITLAB_SCOPES,
    access: 'read',
  });
  const repo = project.path_with_namespace;
  const scopesOf = (token: string) => gl.projectTokens.find(token)?.scopes;
  const d = await dispatchTo(h, containers, rigId, 'pat-read');
  workflowIds.push(d.workflowId);
  const first = await containers.waitForPush(d.container, (p) => p.generation === 1);
  expect(gl.projectTokens.find(first.token)).toMatchObject({ projectId: project.id, scopes: ['read_repository'], accessLevel: 30 });
  expect(gl.gitAccess(first.token, repo, 'read')).toBe(true);
  expect(gl.gitAccess(first.token, repo, 'write')).toBe(false);
  expect(await dispatchView(d.dispatchId)).toMatchObject({ credential_scope: 'repository' });

  // Write: the read token is revoked by the PATCH itself, and the container holds a write token within seconds.
  const asked = Date.now();
  const patched = await h.call<{ access: string }>('PATCH', `/api/rigs/${rigId}`, { access: 'write' });
  expect(patched).toMatchObject({ status: 200, body: { access: 'write' } });
  expect(gl.isProjectTokenLive(first.token)).toBe(false);
  const writer = await containers.waitForPush(d.container, (p) => scopesOf(p.token)?.includes('write_repository') === true, 10_000);
  expect(Date.now() - asked).toBeLessThan(10_000);
  expect(gl.gitAccess(writer.token, repo, 'write')).toBe(true);
  expect((await pull(h, rigId, d.containerToken)).body.token).toBe(writer.token);

  // And back to read.
  expect((await h.call('PATCH', `/api/rigs/${rigId}`, { access: 'read' })).status).toBe(200);
  expect(gl.isProjectTokenLive(writer.token)).toBe(false);
  const reader = await containers.waitForPush(
    d.container,
    (p) => p.generation > writer.generation && scopesOf(p.token)?.[0] === 'read_repository',
    10_000,
  );
  expect(gl.gitAccess(reader.token, repo, 'write')).toBe(false);
  expect(gl.projectTokens.all().filter((t) => t.projectId === project.id && gl.projectTokens.isLive(t))).toHaveLength(1);
  await h.call('POST', `/api/dispatches/${d.dispatchId}/stop`);
}, 60_000);

it('keeps no project token or grant in any workflow history or log line', async () => {
  const tokens = gl.issuedTokens();
  expect(tokens.filter((t) => t.startsWith('glpat-')).length).toBeGreaterThanOrEqual(3);
  const text = await historiesJson(h, workflowIds);
  const logText = h.logs.join('');
  for (const t of tokens) {
    expect(text.includes(t)).toBe(false);
    expect(logText.includes(t)).toBe(false);
  }
});
