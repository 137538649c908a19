// A GitLab rig's container holds a token that works on the rig's project alone: the real git
// client, the container kit's receiver and credential helper, and git-http-backend behind the fake
// GitLab, which accepts a project access token on its own project only (and the account's OAuth
// token on every project the account reaches), and for pushes only with write_repository.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { GITLAB_SCOPES } from '../../lib/providers/gitlab-fns';
import { FakeGitServer } from '../fakes/git-server';
import { FakeGitLab } from '../fakes/gitlab';
import { AgentContainer, type GitRun } from '../helpers/agent-container';
import { eventually, startHarness, type Harness } from '../helpers/harness';
import { gitlabRig } from '../helpers/scenario';

const CLIENT = { clientId: 'rc-git', clientSecret: 'rc-git-secret', redirectUri: 'http://127.0.0.1/integrations/gitlab/callback' };
const AUTH_FAILURE = /Authentication failed for|could not read Username for|HTTP 401|401 Unauthorized/;

let gl: FakeGitLab;
let gitServer: FakeGitServer;
let h: Harness;
let box: AgentContainer | undefined;
let readBox: AgentContainer | undefined;

beforeAll(async () => {
  gl = await FakeGitLab.start();
  gl.registerApplication(CLIENT);
  gitServer = FakeGitServer.forGitLab(gl);
  h = await startHarness({ env: { GITLAB_URL: gl.baseUrl, GITLAB_CLIENT_ID: CLIENT.clientId, GITLAB_CLIENT_SECRET: CLIENT.clientSecret } });
});

afterAll(async () => {
  await box?.close();
  await readBox?.close();
  await h?.close();
  await gl?.close();
  gitServer?.close();
});

function ok(run: GitRun): GitRun {
  if (run.code !== 0 || run.timedOut) throw new Error(`git ${run.args.join(' ')} failed (exit ${run.code}):\n${run.stderr}`);
  return run;
}

it('clones and pushes the rig project with its project token, and the same token fails on the account’s other project', async () => {
  const { projects, grant, rigId, gitUrl } = await gitlabRig(h, gl, {
    clientId: CLIENT.clientId,
    username: 'gitter',
    projects: [{ path: 'app' }, { path: 'secrets' }],
    scopes: GITLAB_SCOPES,
  });
  const [project, other] = projects;
  for (const p of projects) gitServer.createRepo(p.path_with_namespace);
  expect(gitUrl).toBe(project.http_url_to_repo);

  box = await AgentContainer.start({ serviceUrl: h.url, rigId, gitOrigin: gitUrl });
  const created = await h.call<{ dispatch_id: string; container_token: string }>('POST', `/api/rigs/${rigId}/dispatches`, {
    container_url: box.url,
  });
  box.receiveContainerToken(created.body.container_token);
  const held = await eventually(async () => (box!.tokenRecord()?.token ? box!.tokenRecord() : null), 30_000, 'a pushed token');
  expect(held).toMatchObject({ username: 'oauth2', generation: 1 });
  expect(gl.isProjectTokenLive(held.token!)).toBe(true);

  // The rig's project: clone, commit, push.
  ok(await box.git(['clone', gitUrl, 'work']));
  writeFileSync(join(box.dir, 'work', 'agent.txt'), 'written by the agent\n');
  ok(await box.git(['add', 'agent.txt'], { cwd: 'work' }));
  ok(await box.git(['commit', '-m', 'agent: work'], { cwd: 'work' }));
  const head = ok(await box.git(['rev-parse', 'HEAD'], { cwd: 'work' })).stdout.trim();
  ok(await box.git(['push', 'origin', 'HEAD:refs/heads/main'], { cwd: 'work' }));
  expect(gitServer.ref(project.path_with_namespace, 'refs/heads/main')).toBe(head);

  // The account's other project, same host, same helper: refused.
  const refused = await box.git(['clone', other.http_url_to_repo, 'stolen'], { timeoutMs: 20_000 });
  expect(refused).toMatchObject({ timedOut: false, code: 128 });
  expect(refused.stderr).toMatch(AUTH_FAILURE);
  // …which the account-wide grant would have reached.
  expect(gl.gitAccess(grant.accessToken, other.path_with_namespace, 'write')).toBe(true);
  const dispatch = await h.call<{ credential_scope: string }>('GET', `/api/dispatches/${created.body.dispatch_id}`);
  expect(dispatch.body.credential_scope).toBe('repository');

  await h.call('POST', `/api/dispatches/${created.body.dispatch_id}/stop`);
  const text = [box.transcript(), h.logs.join(''), gitServer.backendStderr.join('')].join('\n');
  for (const t of gl.issuedTokens()) expect(text.includes(t)).toBe(false);
}, 90_000);

it('gives a read rig a read_repository project token: clone and fetch work, the push is refused', async () => {
  const { project, rigId, gitUrl } = await gitlabRig(h, gl, {
    clientId: CLIENT.clientId,
    username: 'reader',
    projects: [{ path: 'docs' }],
    scopes: GITLAB_SCOPES,
    access: 'read',
  });
  gitServer.createRepo(project.path_with_namespace);
  readBox = await AgentContainer.start({ serviceUrl: h.url, rigId, gitOrigin: gitUrl });
  const created = await h.call<{ dispatch_id: string; container_token: string }>('POST', `/api/rigs/${rigId}/dispatches`, {
    container_url: readBox.url,
  });
  readBox.receiveContainerToken(created.body.container_token);
  const held = await eventually(async () => (readBox!.tokenRecord()?.token ? readBox!.tokenRecord() : null), 30_000, 'a pushed token');
  expect(gl.projectTokens.find(held.token!)).toMatchObject({ projectId: project.id, scopes: ['read_repository'] });

  ok(await readBox.git(['clone', gitUrl, 'work']));
  const seeded = gitServer.ref(project.path_with_namespace, 'refs/heads/main');
  writeFileSync(join(readBox.dir, 'work', 'agent.txt'), 'an agent that may only read\n');
  ok(await readBox.git(['add', 'agent.txt'], { cwd: 'work' }));
  ok(await readBox.git(['commit', '-m', 'agent: not allowed'], { cwd: 'work' }));
  const push = await readBox.git(['push', 'origin', 'HEAD:refs/heads/main'], { cwd: 'work', timeoutMs: 20_000 });
  expect(push).toMatchObject({ timedOut: false, code: 128 });
  expect(push.stderr).toMatch(/403/);
  expect(gitServer.ref(project.path_with_namespace, 'refs/heads/main')).toBe(seeded);
  ok(await readBox.git(['fetch', 'origin'], { cwd: 'work' })); // the token is kept and still reads

  await h.call('POST', `/api/dispatches/${created.body.dispatch_id}/stop`);
  const text = [readBox.transcript(), h.logs.join(''), gitServer.backendStderr.join('')].join('\n');
  for (const t of gl.issuedTokens()) expect(text.includes(t)).toBe(false);
}, 90_000);
