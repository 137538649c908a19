// Builders for end-to-end scenarios: a fake GitHub/GitLab wired into a harness, and the API calls
// a user would make to get from nothing to a running dispatch.
import type { WorkflowHandle } from '@temporalio/client';
import { FakeContainerHost } from '../fakes/container';
import { FakeGitHub, type FakeGithubApp } from '../fakes/github';
import type { FakeGitLab, ProjectSpec } from '../fakes/gitlab';
import { ADMIN, newOwner, type Harness } from './harness';

export interface GithubWorld {
  gh: FakeGitHub;
  standard: FakeGithubApp;
  lite: FakeGithubApp;
  /** Environment for startHarness pointing the service at this fake. */
  env: Record<string, string>;
}

/** A fake GitHub with a standard and a lite app, and the service env that uses them. */
export async function githubWorld(opts: { tokenLifetimeSeconds?: number } = {}): Promise<GithubWorld> {
  const gh = await FakeGitHub.start();
  if (opts.tokenLifetimeSeconds) gh.tokenLifetimeSeconds = opts.tokenLifetimeSeconds;
  const standard = await gh.createApp({ slug: 'rc-standard' });
  const lite = await gh.createApp({ slug: 'rc-lite', permissions: { contents: 'read', metadata: 'read' } });
  return {
    gh,
    standard,
    lite,
    env: {
      GITHUB_API_URL: gh.apiUrl,
      GITHUB_APP_ID: standard.appId,
      GITHUB_APP_PRIVATE_KEY: standard.privateKeyPem,
      GITHUB_APP_SLUG: standard.slug,
      GITHUB_LITE_APP_ID: lite.appId,
      GITHUB_LITE_APP_PRIVATE_KEY: lite.privateKeyPem,
      GITHUB_LITE_APP_SLUG: lite.slug,
    },
  };
}

export interface Dispatched {
  dispatchId: string;
  workflowId: string;
  containerToken: string;
  container: string;
  rigId: string;
}

/** Registers a GitHub installation for a new owner and creates a town and a rig on `repoIndex`. */
export async function githubRig(
  h: Harness,
  world: GithubWorld,
  opts: { appType?: 'standard' | 'lite'; repos?: number; login?: string; access?: 'read' | 'write' } = {},
) {
  const appType = opts.appType ?? 'standard';
  const app = appType === 'lite' ? world.lite : world.standard;
  const inst = world.gh.addInstallation({
    appId: app.appId,
    account: { login: opts.login ?? `acme-${Math.random().toString(36).slice(2, 8)}` },
    repositories: opts.repos ?? 3,
  });
  const owner = newOwner();
  const integration = await h.call<{ id: string; status: string }>('POST', '/api/integrations', {
    provider: 'github',
    owner_id: owner,
    installation_id: inst.installationId,
    app_type: appType,
  });
  if (integration.status !== 201) throw new Error(`register failed: ${JSON.stringify(integration.body)}`);
  const town = await h.call<{ id: string }>('POST', '/api/towns', { name: 'gh-town', owner_id: owner });
  const repo = inst.repositories[0];
  const rig = await h.call<{ id: string; git_url: string }>('POST', `/api/towns/${town.body.id}/rigs`, {
    name: repo.name,
    platform_integration_id: integration.body.id,
    repository_id: repo.id,
    ...(opts.access ? { access: opts.access } : {}),
  });
  if (rig.status !== 201) throw new Error(`rig failed: ${JSON.stringify(rig.body)}`);
  return {
    installationId: inst.installationId,
    repositories: inst.repositories,
    repo,
    owner,
    integrationId: integration.body.id,
    townId: town.body.id,
    rigId: rig.body.id,
  };
}

/**
 * A GitLab user owning `projects` (default one), their grant with `scopes` registered as an
 * integration for a new owner, a town, and a rig on the first project.
 */
export async function gitlabRig(
  h: Harness,
  gl: FakeGitLab,
  opts: { clientId: string; username: string; projects?: ProjectSpec[]; scopes?: string; access?: 'read' | 'write' },
) {
  const user = gl.addUser({ username: opts.username });
  const projects = gl.addProjects(user.id, opts.projects ?? [{ path: 'app' }]);
  const grant = gl.grant(user.id, opts.clientId, { scopes: opts.scopes });
  const owner = newOwner();
  const integration = await h.call<{ id: string }>('POST', '/api/integrations', {
    provider: 'gitlab',
    owner_id: owner,
    access_token: grant.accessToken,
    refresh_token: grant.refreshToken,
    expires_at: grant.expiresAt.toISOString(),
  });
  if (integration.status !== 201) throw new Error(`register failed: ${JSON.stringify(integration.body)}`);
  const town = await h.call<{ id: string }>('POST', '/api/towns', { name: 'gl-town', owner_id: owner });
  const rig = await h.call<{ id: string; git_url: string }>('POST', `/api/towns/${town.body.id}/rigs`, {
    name: projects[0].path,
    platform_integration_id: integration.body.id,
    repository_id: projects[0].id,
    ...(opts.access ? { access: opts.access } : {}),
  });
  if (rig.status !== 201) throw new Error(`rig failed: ${JSON.stringify(rig.body)}`);
  return {
    user,
    projects,
    project: projects[0],
    grant,
    owner,
    integrationId: integration.body.id,
    townId: town.body.id,
    rigId: rig.body.id,
    gitUrl: rig.body.git_url,
  };
}

/** A town with one static `git_auth` token for git.example.com (new owner) and a rig on a manual URL there. */
export async function townTokenRig(h: Harness, opts: { name: string; token: string }) {
  const town = await h.call<{ id: string }>('POST', '/api/towns', { name: opts.name, owner_id: newOwner() });
  if (town.status !== 201) throw new Error(`town failed: ${JSON.stringify(town.body)}`);
  const auth = await h.call('PUT', `/api/towns/${town.body.id}/git-auth`, { tokens: [{ host: 'git.example.com', token: opts.token }] });
  if (auth.status !== 204) throw new Error(`git-auth failed: ${JSON.stringify(auth.body)}`);
  const rig = await h.call<{ id: string }>('POST', `/api/towns/${town.body.id}/rigs`, {
    name: opts.name,
    git_url: `https://git.example.com/a/${opts.name}.git`,
  });
  if (rig.status !== 201) throw new Error(`rig failed: ${JSON.stringify(rig.body)}`);
  return { townId: town.body.id, rigId: rig.body.id };
}

/** Registers a GitHub installation again (as the `installation` webhook does after a suspend or unsuspend): its dispatches mint at once. */
export async function registerGithubAgain(
  h: Harness,
  rig: { owner: string; installationId: number },
  appType: 'standard' | 'lite' = 'standard',
) {
  return h.call<{ status: string }>('POST', '/api/integrations', {
    provider: 'github',
    owner_id: rig.owner,
    installation_id: rig.installationId,
    app_type: appType,
  });
}

/** Starts a dispatch for `rigId` into a new fake container named `name`. */
export async function dispatchTo(h: Harness, containers: FakeContainerHost, rigId: string, name: string): Promise<Dispatched> {
  const url = containers.add(name);
  const res = await h.call<{ dispatch_id: string; workflow_id: string; container_token: string }>('POST', `/api/rigs/${rigId}/dispatches`, {
    container_url: url,
  });
  if (res.status !== 201) throw new Error(`dispatch failed: ${res.status} ${JSON.stringify(res.body)}`);
  containers.setBearer(name, res.body.container_token);
  return {
    dispatchId: res.body.dispatch_id,
    workflowId: res.body.workflow_id,
    containerToken: res.body.container_token,
    container: name,
    rigId,
  };
}

/** POST /api/internal/rigs/:rig/git-token as the container would. */
export async function pull(h: Harness, rigId: string, containerToken: string) {
  const res = await fetch(`${h.url}/api/internal/rigs/${rigId}/git-token`, {
    method: 'POST',
    headers: { authorization: `Bearer ${containerToken}` },
  });
  return {
    status: res.status,
    headers: res.headers,
    body: (await res.json().catch(() => null)) as { token: string; expires_at: string | null; username: string; generation: number } & {
      error?: { code: string; field?: string };
    },
  };
}

/** Every string in `value`, with byte arrays (Temporal payloads) decoded as UTF-8. */
export function allText(value: unknown, out: string[] = []): string[] {
  if (value instanceof Uint8Array) out.push(Buffer.from(value).toString('utf8'));
  else if (typeof value === 'string') out.push(value);
  else if (Array.isArray(value)) for (const v of value) allText(v, out);
  else if (value && typeof value === 'object') for (const v of Object.values(value)) allText(v, out);
  return out;
}

/** Every run of `workflowId`, oldest first: its id, task queue, status and history. */
export async function runsOf(
  h: Harness,
  workflowId: string,
): Promise<Array<{ runId: string; taskQueue: string; status: string; history: Awaited<ReturnType<WorkflowHandle['fetchHistory']>> }>> {
  const found: Array<{ runId: string; taskQueue: string; status: string; start: number }> = [];
  for await (const wf of h.core.temporal.workflow.list({ query: `WorkflowId = "${workflowId}"` }))
    found.push({ runId: wf.runId, taskQueue: wf.taskQueue, status: wf.status.name, start: wf.startTime.getTime() });
  found.sort((a, b) => a.start - b.start);
  return Promise.all(
    found.map(async ({ runId, taskQueue, status }) => ({
      runId,
      taskQueue,
      status,
      history: await h.core.temporal.workflow.getHandle(workflowId, runId).fetchHistory(),
    })),
  );
}

/** The reasons of every `credentialsChanged` signal a dispatch's workflow received, over all its runs. */
export async function credentialsChangedReasons(h: Harness, workflowId: string): Promise<string[]> {
  const reasons: string[] = [];
  for (const run of await runsOf(h, workflowId)) {
    for (const e of run.history.events ?? []) {
      const signal = e.workflowExecutionSignaledEventAttributes;
      if (signal?.signalName !== 'credentialsChanged') continue;
      const [arg] = signal.input?.payloads ?? [];
      reasons.push((JSON.parse(Buffer.from(arg?.data ?? []).toString('utf8')) as { reason: string }).reason);
    }
  }
  return reasons;
}

/** Text of every workflow history in `workflowIds` (all runs, payloads decoded), for secret scans. */
export async function historiesJson(h: Harness, workflowIds: string[]): Promise<string> {
  const parts: string[] = [];
  for (const id of workflowIds) for (const run of await runsOf(h, id)) parts.push(allText(run.history).join('\n'));
  return parts.join('\n');
}

export { ADMIN };
