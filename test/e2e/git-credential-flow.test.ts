// The whole chain with the real git client: API → token workflow → fake GitHub mints → the kit's
// receiver (a child process) writes the token file → git asks the kit's credential helper →
// git-http-backend behind the fake GitHub accepts only tokens GitHub considers live for that
// repository. Tokens live 8 s, so half a minute covers first push, refreshes, a pull and the stop.
import { existsSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FakeGitServer } from '../fakes/git-server';
import { AgentContainer, type GitRun, type TokenFileRecord } from '../helpers/agent-container';
import { eventually, startHarness, type Harness } from '../helpers/harness';
import { githubRig, githubWorld, type GithubWorld } from '../helpers/scenario';

const LIFETIME = 8;
const MARGIN = 3;
// What git prints when credentials are refused or none can be had (LC_ALL=C).
const AUTH_FAILURE = /Authentication failed for|could not read Username for|HTTP 401|401 Unauthorized/;

let world: GithubWorld;
let gitServer: FakeGitServer;
let h: Harness;
const boxes: AgentContainer[] = [];

beforeAll(async () => {
  world = await githubWorld({ tokenLifetimeSeconds: LIFETIME });
  gitServer = FakeGitServer.forGitHub(world.gh);
  h = await startHarness({
    env: { ...world.env, TOKEN_REFRESH_MARGIN_SECONDS: String(MARGIN), REFRESH_JITTER_MAX_SECONDS: '0.5' },
    workflowDefaults: { cyclesPerRun: 3 },
  });
});

afterAll(async () => {
  for (const box of boxes) await box.close();
  await h?.close();
  await world?.gh.close();
  gitServer?.close();
});

/** Fails with git's own words, so a broken run explains itself. */
function ok(run: GitRun): GitRun {
  if (run.code !== 0 || run.timedOut)
    throw new Error(
      `git ${run.args.join(' ')} failed (${run.timedOut ? 'timed out' : `exit ${run.code}`}):\n${run.stderr}\n--- backend:\n${gitServer.backendStderr.join('')}`,
    );
  return run;
}

/**
 * A rig with a seeded repository and a container dispatched to it, in the order a platform goes:
 * the container runs (receiver listening, no token yet), the dispatch is created with its URL,
 * then the container gets the dispatch's token. Pushes before that get 503 and are retried.
 */
async function dispatchedContainer(appType: 'standard' | 'lite', access?: 'read' | 'write') {
  const rig = await githubRig(h, world, { appType, repos: 2, access });
  gitServer.createRepo(rig.repo.full_name);
  const gitUrl = (await h.call<{ git_url: string }>('GET', `/api/rigs/${rig.rigId}`)).body.git_url;
  expect(gitUrl).toBe(`${world.gh.webUrl}/${rig.repo.full_name}.git`);
  const box = await AgentContainer.start({ serviceUrl: h.url, rigId: rig.rigId, gitOrigin: gitUrl });
  boxes.push(box);
  const created = await h.call<{ dispatch_id: string; container_token: string }>('POST', `/api/rigs/${rig.rigId}/dispatches`, {
    container_url: box.url,
  });
  expect(created.status).toBe(201);
  box.receiveContainerToken(created.body.container_token);
  expect(statSync(box.containerTokenFile).mode & 0o777).toBe(0o600);

  // Tokens by generation as pushes bring them (in memory only, for liveness checks).
  const pushed = new Map<number, TokenFileRecord>();
  const waitForGeneration = (atLeast: number) =>
    eventually(
      async () => {
        const r = box.tokenRecord();
        if (r?.token && r.source === 'push' && !pushed.has(r.generation)) pushed.set(r.generation, r);
        return r?.token && r.generation >= atLeast ? r : null;
      },
      30_000,
      `token file generation ${atLeast}`,
    );
  return { rig, gitUrl, box, dispatchId: created.body.dispatch_id, pushed, waitForGeneration };
}

async function commitAndPush(box: AgentContainer, name: string): Promise<{ run: GitRun; head: string }> {
  writeFileSync(join(box.dir, 'work', `${name}.txt`), `written by the agent: ${name}\n`);
  ok(await box.git(['add', `${name}.txt`], { cwd: 'work' }));
  ok(await box.git(['commit', '-m', `agent: ${name}`], { cwd: 'work' }));
  const head = ok(await box.git(['rev-parse', 'HEAD'], { cwd: 'work' })).stdout.trim();
  return { run: await box.git(['push', 'origin', 'HEAD:refs/heads/main'], { cwd: 'work' }), head };
}

async function pulledEvents(dispatchId: string): Promise<number> {
  const res = await h.call<{ events: Array<{ kind: string }> }>('GET', `/api/dispatches/${dispatchId}/events`);
  return res.body.events.filter((e) => e.kind === 'pulled').length;
}

it('clones, pushes and fetches through the credential helper across refreshes, pulls when the file is gone, and fails cleanly after stop', async () => {
  const { rig, gitUrl, box, dispatchId, pushed, waitForGeneration } = await dispatchedContainer('standard');
  const repo = rig.repo.full_name;

  // 1. First push arrives; clone, commit and push work through the helper.
  const first = await waitForGeneration(1);
  expect(first).toMatchObject({ generation: 1, username: 'x-access-token', source: 'push' });
  expect(statSync(box.tokenFile).mode & 0o777).toBe(0o600);
  ok(await box.git(['clone', gitUrl, 'work']));
  expect(ok(await box.git(['log', '--format=%s'], { cwd: 'work' })).stdout.trim()).toBe('Initial commit');
  // git had to ask: the unauthenticated probe got the Basic challenge, then the token was accepted.
  expect(gitServer.requests.some((r) => r.repo === repo && !r.withCredentials && r.status === 401)).toBe(true);
  expect(gitServer.requests.some((r) => r.repo === repo && r.withCredentials && r.service === 'git-upload-pack' && r.status === 200)).toBe(
    true,
  );
  const one = await commitAndPush(box, 'first');
  ok(one.run);
  expect(gitServer.ref(repo, 'refs/heads/main')).toBe(one.head);

  // 2. Several refreshes later the first tokens are dead at GitHub; git carries on, unconfigured.
  const fourth = await waitForGeneration(4);
  const early = [pushed.get(1), pushed.get(2)].filter((r): r is TokenFileRecord => r !== undefined);
  const lastExpiry = Math.max(...early.map((r) => Date.parse(r.expires_at!)));
  // GitHub reports expiry to the second (truncated), so allow the second it may have hidden.
  if (lastExpiry + 1100 > Date.now()) await new Promise((r) => setTimeout(r, lastExpiry - Date.now() + 1100));
  for (const r of early) expect(world.gh.isTokenLive(r.token!, repo, 'read')).toBe(false);
  expect(fourth.token).not.toBe(first.token);
  ok(await box.git(['fetch', 'origin'], { cwd: 'work' }));
  const two = await commitAndPush(box, 'second');
  ok(two.run);
  expect(gitServer.ref(repo, 'refs/heads/main')).toBe(two.head);
  expect(ok(await box.git(['remote', 'get-url', 'origin'], { cwd: 'work' })).stdout.trim()).toBe(gitUrl); // no credentials in the URL

  // 3. No token file: the helper pulls from the service. Right after a push, so the next push
  // (seconds away) cannot recreate the file before git asks.
  const before = await pulledEvents(dispatchId);
  const fresh = await waitForGeneration(fourth.generation + 1);
  rmSync(box.tokenFile);
  ok(await box.git(['fetch', 'origin'], { cwd: 'work' }));
  await eventually(async () => (await pulledEvents(dispatchId)) > before, 10_000, 'a pulled event');
  expect(box.tokenRecord()?.generation).toBeGreaterThanOrEqual(fresh.generation); // the helper cached what it pulled

  // 4. Stop revokes. git then fails with an authentication error, never a prompt: first the cached
  // (revoked) token is refused and erased, or already expired; either way the next run pulls and
  // hears that the dispatch ended.
  expect((await h.call('POST', `/api/dispatches/${dispatchId}/stop`)).status).toBe(202);
  await eventually(
    async () => (await h.call<{ status: string }>('GET', `/api/dispatches/${dispatchId}`)).body.status === 'stopped',
    20_000,
    'stopped',
  );
  for (const r of pushed.values()) expect(world.gh.isTokenLive(r.token!)).toBe(false);
  for (let i = 0; i < 2; i++) {
    const run = await box.git(['fetch', 'origin'], { cwd: 'work', timeoutMs: 20_000 });
    expect(run).toMatchObject({ timedOut: false, code: 128 });
    expect(run.stderr).toMatch(AUTH_FAILURE);
  }
  const last = box.runs[box.runs.length - 1];
  expect(last.stderr).toContain('git-credential-repo-connect: dispatch ended (410)');
  expect(last.stderr).toMatch(/could not read Username for '.*': terminal prompts disabled/);
  expect(existsSync(join(box.dir, 'home', '.git-credentials'))).toBe(false); // the image's `store` helper was reset
}, 120_000);

it.each([
  ['a lite (read-only) installation', 'lite', undefined],
  ['a read rig of the standard (read/write) app', 'standard', 'read'],
] as const)(
  'lets %s clone and fetch, and refuses its push with 403 without dropping the token',
  async (_, appType, access) => {
    const { rig, gitUrl, box, dispatchId, waitForGeneration } = await dispatchedContainer(appType, access);
    const held = await waitForGeneration(1);
    ok(await box.git(['clone', gitUrl, 'work']));
    const seeded = gitServer.ref(rig.repo.full_name, 'refs/heads/main');

    const push = await commitAndPush(box, 'not-allowed');
    expect(push.run).toMatchObject({ timedOut: false, code: 128 });
    expect(push.run.stderr).toMatch(/403/);
    expect(gitServer.ref(rig.repo.full_name, 'refs/heads/main')).toBe(seeded);
    // A 403 is not a bad credential: git keeps it and so does the helper's cache.
    expect(box.tokenRecord()?.token).toBeDefined();
    expect(box.tokenRecord()?.generation).toBeGreaterThanOrEqual(held.generation);
    ok(await box.git(['fetch', 'origin'], { cwd: 'work' }));
    expect((await h.call('POST', `/api/dispatches/${dispatchId}/stop`)).status).toBe(202);
  },
  60_000,
);

it('leaves no token in git output, git config, the receiver output or the service logs', async () => {
  const tokens = world.gh.issuedTokens();
  expect(tokens.length).toBeGreaterThanOrEqual(6);
  expect(boxes.every((b) => b.runs.length > 0 && /stored generation 1 for dispatch/.test(b.receiverLog))).toBe(true); // the scan reads real output
  const text = [...boxes.map((b) => b.transcript()), h.logs.join(''), gitServer.backendStderr.join('')].join('\n');
  for (const t of tokens) expect(text.includes(t)).toBe(false);
});
