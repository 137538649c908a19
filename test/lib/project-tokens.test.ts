// The project-token store against the real Postgres and the fake GitLab over HTTP: one token per
// rig, exactly one rotation however many ask at once, recovery from answers lost on the way back,
// refusals said out loud and asked again only when due, revocation by detach and by the idle sweep.
// The store's clock is moved forward instead of waiting a day for a rotation.
import { randomBytes, randomUUID } from 'node:crypto';
import { createDb, type Db } from '../../lib/db';
import { createGitlabGrants } from '../../lib/gitlab-grant';
import { createProjectTokens, type ProjectTokenRig } from '../../lib/project-tokens';
import { saveIssued } from '../../lib/project-token-rows';
import { createGitlabClient } from '../../lib/providers/gitlab';
import { GITLAB_SCOPES } from '../../lib/providers/gitlab-fns';
import { ProviderError } from '../../lib/providers/types';
import { createSecretBox, fingerprint, type SecretBox } from '../../lib/secrets';
import { containerTokenContext } from '../../lib/secret-contexts';
import { FakeGitLab } from '../fakes/gitlab';
import { storeGitlabIntegration } from '../helpers/gitlab-rows';
import { testDatabaseUrl } from '../helpers/test-env';

const CLIENT = { clientId: 'rc-store', clientSecret: 'rc-store-secret', redirectUri: 'http://127.0.0.1:9/cb' };
const HOUR = 3600_000;

let db: Db;
let secrets: SecretBox;
let gl: FakeGitLab;
let clock = 0;
const changed: string[] = [];
const client = createGitlabClient({ ...CLIENT, timeoutMs: 1000 });

beforeAll(async () => {
  db = createDb(testDatabaseUrl(), { max: 8 });
  secrets = createSecretBox([randomBytes(32)]);
  gl = await FakeGitLab.start();
  gl.registerApplication(CLIENT);
  gl.accessTokenLifetimeSeconds = 48 * 3600; // grants outlive the store's clock moved a day ahead
});
afterEach(() => gl.clearFailures());
afterAll(async () => {
  await gl?.close();
  await db?.$disconnect();
});

function store(opts: { rotateSeconds?: number; retrySeconds?: number } = {}) {
  const now = () => Date.now() + clock;
  const grants = createGitlabGrants({ db, secrets, gitlab: client, now });
  return createProjectTokens({
    db,
    secrets,
    gitlab: client,
    grants,
    rotateSeconds: opts.rotateSeconds ?? 86_400,
    retrySeconds: opts.retrySeconds ?? 3600,
    now,
    onChanged: async (rigId, reason) => void changed.push(`${rigId} ${reason}`),
  });
}

/** A GitLab user owning two projects, their grant as an integration, and a rig on the first project. */
async function gitlabRig(scopes = GITLAB_SCOPES, access: 'read' | 'write' = 'write') {
  const user = gl.addUser({ username: `st-${randomBytes(3).toString('hex')}` });
  const [project, other] = gl.addProjects(user.id, 2);
  const grant = gl.grant(user.id, CLIENT.clientId, { scopes });
  const { id, ownerId } = await storeGitlabIntegration(db, secrets, { baseUrl: gl.baseUrl, user, grant });
  const town = await db.town.create({ data: { name: 'pt', ownerId } });
  const row = await db.rig.create({
    data: {
      townId: town.id,
      name: project.path,
      gitUrl: project.http_url_to_repo,
      defaultBranch: 'main',
      platformIntegrationId: id,
      repositoryId: BigInt(project.id),
      access,
    },
  });
  const rig: ProjectTokenRig = {
    rigId: row.id,
    rigName: row.name,
    integrationId: id,
    projectId: BigInt(project.id),
    baseUrl: gl.baseUrl,
    access,
  };
  return { user, project, other, rig };
}

/** Moves the store's clock to 200 s before `answer` stops being used: less than the 300 s asked for. */
function nearEndOf(answer: { scope: string; expiresAt?: Date }) {
  clock = answer.expiresAt!.getTime() - Date.now() - 200_000;
}

const liveTokensOf = (projectId: number) => gl.projectTokens.all().filter((t) => t.projectId === projectId && gl.projectTokens.isLive(t));

it('creates one Developer token per rig, reuses it, and it works on the rig project alone', async () => {
  const s = store();
  const { rig, project, other } = await gitlabRig();
  const created = gl.projectTokens.stats.created;
  const first = await s.forRig(rig, 300);
  expect(first).toMatchObject({ scope: 'repository' });
  if (first.scope !== 'repository') throw new Error('unreachable');
  expect(first.expiresAt.getTime()).toBeGreaterThan(Date.now() + 8 * HOUR - 60_000); // at least 8 h of use, at most a day
  expect(first.expiresAt.getTime()).toBeLessThanOrEqual(Date.now() + 24 * HOUR);
  expect(await s.forRig(rig, 300)).toEqual(first);
  expect(gl.projectTokens.stats.created - created).toBe(1);
  expect(gl.gitAccess(first.token, project.path_with_namespace, 'write')).toBe(true);
  expect(gl.gitAccess(first.token, other.path_with_namespace, 'read')).toBe(false);
  const atGitlab = liveTokensOf(project.id);
  expect(atGitlab).toHaveLength(1);
  expect(atGitlab[0]).toMatchObject({
    accessLevel: 30,
    scopes: ['write_repository'],
    name: `repo-connect rig ${project.path} [rig ${rig.rigId}]`,
  });
  const row = await db.rigProjectToken.findUniqueOrThrow({ where: { rigId: rig.rigId } });
  expect(row.tokenEnc).not.toContain(first.token); // encrypted at rest
  expect(secrets.decrypt(row.tokenEnc!, `project-token:${row.id}`)).toBe(first.token);
});

it('rotates exactly once when twenty dispatches ask together, and tells the rig once', async () => {
  const s = store();
  const { rig, project } = await gitlabRig();
  const first = await s.forRig(rig, 300);
  const rotated = gl.projectTokens.stats.rotated;
  changed.length = 0;
  nearEndOf(first);
  try {
    const answers = await Promise.all(Array.from({ length: 20 }, () => s.forRig(rig, 300)));
    const tokens = new Set(answers.map((a) => (a.scope === 'repository' ? a.token : a.reason)));
    expect(tokens.size).toBe(1);
    expect(gl.projectTokens.stats.rotated - rotated).toBe(1);
    const [token] = tokens;
    expect(first.scope === 'repository' && gl.isProjectTokenLive(first.token)).toBe(false);
    expect(gl.isProjectTokenLive(token)).toBe(true);
    expect(liveTokensOf(project.id)).toHaveLength(1);
    expect(changed).toEqual([`${rig.rigId} gitlab project token rotated`]);
  } finally {
    clock = 0;
  }
});

it('recovers from a rotation whose answer was lost: the unseen token dies and a new one replaces it', async () => {
  const s = store();
  const { rig, project } = await gitlabRig();
  nearEndOf(await s.forRig(rig, 300));
  try {
    gl.failNext(1, { status: 502, lose: true, match: (m, p) => p.endsWith('/rotate') });
    const lost = await s.forRig(rig, 300).then(
      () => null,
      (e: unknown) => e,
    );
    expect(lost).toBeInstanceOf(ProviderError);
    const unseen = liveTokensOf(project.id);
    expect(unseen).toHaveLength(1); // GitLab rotated: the token the store holds is dead, the new one unseen
    const after = await s.forRig(rig, 300);
    expect(after.scope).toBe('repository');
    expect(gl.isProjectTokenLive(unseen[0].token)).toBe(false); // reuse detection took it down
    expect(liveTokensOf(project.id).map((t) => t.token)).toEqual([after.scope === 'repository' && after.token]);
  } finally {
    clock = 0;
  }
});

it('revokes a token whose creation answer was lost before creating the next', async () => {
  const s = store();
  const { rig, project } = await gitlabRig();
  gl.failNext(1, { status: 500, lose: true, match: (m, p) => m === 'POST' && p.endsWith('/access_tokens') });
  await expect(s.forRig(rig, 300)).rejects.toBeInstanceOf(ProviderError);
  const [orphan] = liveTokensOf(project.id);
  expect(orphan).toBeDefined();
  const got = await s.forRig(rig, 300);
  expect(gl.isProjectTokenLive(orphan.token)).toBe(false);
  expect(liveTokensOf(project.id).map((t) => t.token)).toEqual([got.scope === 'repository' && got.token]);
});

it('before a create, revokes only the strays of its own rig, even where GitLab ignores the search and pages the list', async () => {
  const s = store();
  const { rig, project, user } = await gitlabRig();
  // The project's other tokens: CI bots (more than a page of them) and a second rig's.
  const maintainer = gl.grant(user.id, CLIENT.clientId, { scopes: GITLAB_SCOPES }).accessToken;
  const call = { baseUrl: gl.baseUrl, accessToken: maintainer, projectId: project.id };
  const expiresAt = new Date(Date.now() + 30 * 24 * HOUR).toISOString().slice(0, 10);
  for (let i = 0; i < 105; i++) {
    await client.createProjectAccessToken({ ...call, name: `ci-bot-${i}`, scopes: ['read_repository'], accessLevel: 20, expiresAt });
  }
  const otherRig = randomUUID();
  await client.createProjectAccessToken({
    ...call,
    name: `repo-connect rig other [rig ${otherRig}]`,
    scopes: ['read_repository'],
    accessLevel: 30,
    expiresAt,
  });
  // This rig's token whose creation answer was lost, on the last page.
  gl.failNext(1, { status: 500, lose: true, match: (m, p) => m === 'POST' && p.endsWith('/access_tokens') });
  await expect(s.forRig(rig, 300)).rejects.toBeInstanceOf(ProviderError);
  const others = liveTokensOf(project.id).filter((t) => !t.name.endsWith(`[rig ${rig.rigId}]`));
  const [orphan] = liveTokensOf(project.id).filter((t) => t.name.endsWith(`[rig ${rig.rigId}]`));
  expect([others.length, orphan !== undefined]).toEqual([106, true]);

  gl.projectTokens.ignoresSearch = true;
  try {
    const got = await s.forRig(rig, 300);
    expect(got.scope).toBe('repository');
    expect(gl.isProjectTokenLive(orphan.token)).toBe(false);
    expect(others.filter((t) => !gl.isProjectTokenLive(t.token))).toEqual([]);
  } finally {
    gl.projectTokens.ignoresSearch = false;
  }
});

it('falls back with the reason, asks again only when due, and switches to the token when GitLab allows it', async () => {
  const s = store({ retrySeconds: 600 });
  const { rig, user, project } = await gitlabRig();
  gl.setRole(user.id, project.id, 'developer');
  const refused = gl.projectTokens.stats.refused;
  const first = await s.forRig(rig, 300);
  expect(first).toEqual({ scope: 'account', reason: expect.stringMatching(/Maintainer or Owner role/) });
  expect(await s.forRig(rig, 300)).toEqual(first);
  expect(gl.projectTokens.stats.refused - refused).toBe(1); // not asked again before it is due
  gl.setRole(user.id, project.id, 'maintainer');
  changed.length = 0;
  clock = 601_000;
  try {
    const later = await s.forRig(rig, 300);
    expect(later.scope).toBe('repository');
    expect(changed).toEqual([`${rig.rigId} gitlab project token created`]);
  } finally {
    clock = 0;
  }
  // A grant connected before the service asked for `api` says so.
  const legacy = await gitlabRig('read_api read_user write_repository');
  expect(await s.forRig(legacy.rig, 300)).toEqual({ scope: 'account', reason: expect.stringMatching(/lacks the api scope/) });
  // A reconnect asks again at once.
  await s.retryNow({ rigId: legacy.rig.rigId });
  await s.forRig(legacy.rig, 300);
  expect(gl.projectTokens.stats.refused - refused).toBe(3);
});

it('gives a read rig a read_repository token that clones but cannot push, and a change of access replaces it', async () => {
  const s = store();
  const { rig, project } = await gitlabRig(GITLAB_SCOPES, 'read');
  const read = await s.forRig(rig, 300);
  if (read.scope !== 'repository') throw new Error(`expected a project token, got ${JSON.stringify(read)}`);
  expect(liveTokensOf(project.id)).toEqual([expect.objectContaining({ scopes: ['read_repository'], accessLevel: 30 })]);
  expect(gl.gitAccess(read.token, project.path_with_namespace, 'read')).toBe(true);
  expect(gl.gitAccess(read.token, project.path_with_namespace, 'write')).toBe(false);

  // The rig now writes (the API also detaches at once; the store alone must not hand out the read token).
  await db.rig.update({ where: { id: rig.rigId }, data: { access: 'write' } });
  const writer = { ...rig, access: 'write' as const };
  const write = await s.forRig(writer, 300);
  if (write.scope !== 'repository') throw new Error('expected a project token');
  expect(gl.isProjectTokenLive(read.token)).toBe(false); // the read token was revoked
  expect(gl.gitAccess(write.token, project.path_with_namespace, 'write')).toBe(true);
  expect(liveTokensOf(project.id)).toEqual([expect.objectContaining({ scopes: ['write_repository'] })]);
  // A mint that read the rig before the change makes no token of the scope it gave up.
  await expect(s.forRig(rig, 300)).rejects.toThrow(/reconnected while its token was being made/);
  expect(liveTokensOf(project.id)).toHaveLength(1);
});

it('revokes on detach and on reconnecting to another project; a failed revocation waits for the sweep', async () => {
  const s = store();
  const { rig, project, other } = await gitlabRig();
  const a = await s.forRig(rig, 300);
  // Reconnected to the other project: the first token goes, the rig gets one for the new project.
  await db.rig.update({ where: { id: rig.rigId }, data: { repositoryId: BigInt(other.id) } });
  const moved = { ...rig, projectId: BigInt(other.id) };
  const b = await s.forRig(moved, 300);
  // A mint that read the rig before the reconnect makes no token for the project it left.
  await expect(s.forRig(rig, 300)).rejects.toThrow(/reconnected while its token was being made/);
  expect(a.scope === 'repository' && gl.isProjectTokenLive(a.token)).toBe(false);
  expect(b.scope === 'repository' && gl.gitAccess(b.token, other.path_with_namespace, 'write')).toBe(true);
  expect(liveTokensOf(project.id)).toHaveLength(0);

  gl.failNext(1, { status: 503, match: (m) => m === 'DELETE' });
  const ids = await s.detach(db, rig.rigId);
  await s.revoke(ids);
  expect(b.scope === 'repository' && gl.isProjectTokenLive(b.token)).toBe(true);
  expect(await db.rigProjectToken.findMany({ where: { id: { in: ids } }, select: { status: true, rigId: true } })).toEqual([
    { status: 'revoking', rigId: null },
  ]);
  expect(await s.sweep(3600)).toBeGreaterThanOrEqual(1);
  expect(b.scope === 'repository' && gl.isProjectTokenLive(b.token)).toBe(false);
  expect(await db.rigProjectToken.count({ where: { id: { in: ids } } })).toBe(0);
});

it('a revocation that keeps failing goes to the back of the queue: the sweep reaches the rows behind it', async () => {
  const s = store();
  // Three detached tokens whose grants are dead (GitLab cannot be asked), then one that can go.
  const stuck = [];
  for (let i = 0; i < 3; i++) {
    const { rig } = await gitlabRig();
    stuck.push(await s.forRig(rig, 300));
    await db.platformIntegration.update({ where: { id: rig.integrationId }, data: { status: 'reconnect_required' } });
    await s.detach(db, rig.rigId);
  }
  const { rig } = await gitlabRig();
  const healthy = await s.forRig(rig, 300);
  await s.detach(db, rig.rigId);

  // Three rows a round: oldest first would take the three stuck ones every time.
  for (let round = 0; round < 10 && healthy.scope === 'repository' && gl.isProjectTokenLive(healthy.token); round++) await s.sweep(3600, 3);
  expect(healthy.scope === 'repository' && gl.isProjectTokenLive(healthy.token)).toBe(false);
  expect(stuck.filter((t) => t.scope === 'repository' && gl.isProjectTokenLive(t.token))).toHaveLength(3); // still waiting for a grant
});

it('a renewal that lost its row lock cannot save over a row detached since it read it', async () => {
  const s = store();
  const { rig } = await gitlabRig();
  await s.forRig(rig, 300);
  const read = await db.rigProjectToken.findUniqueOrThrow({ where: { rigId: rig.rigId } });
  await s.detach(db, rig.rigId);
  const late = { id: 99, token: 'glpat-late-answer', expiresAt: '2030-01-01' };
  const issued = { rowId: read.id, fromVersion: read.version, token: late, rotated: true, usableUntil: new Date() };
  expect(await saveIssued(db, secrets, issued)).toBe(0);
  expect(await db.rigProjectToken.findUniqueOrThrow({ where: { id: read.id } })).toMatchObject({ status: 'revoking', rigId: null });
});

it('sweeps the tokens of idle rigs, and never of a rig with a running dispatch', async () => {
  const s = store();
  const idle = await gitlabRig();
  const busy = await gitlabRig();
  const [i, b] = [await s.forRig(idle.rig, 300), await s.forRig(busy.rig, 300)];
  const id = randomUUID();
  await db.agentDispatch.create({
    data: {
      id,
      rigId: busy.rig.rigId,
      containerUrl: 'http://127.0.0.1:9/c',
      containerTokenHash: fingerprint(id),
      containerTokenEnc: secrets.encrypt('x', containerTokenContext(id)),
      workflowId: `git-token-${id}`,
    },
  });
  changed.length = 0;
  await s.sweep(0);
  expect(i.scope === 'repository' && gl.isProjectTokenLive(i.token)).toBe(false);
  expect(b.scope === 'repository' && gl.isProjectTokenLive(b.token)).toBe(true);
  expect(await db.rigProjectToken.findUniqueOrThrow({ where: { rigId: idle.rig.rigId } })).toMatchObject({
    status: 'revoked',
    tokenEnc: null,
    revokedAt: expect.any(Date),
  });
  expect(changed).toContain(`${idle.rig.rigId} idle gitlab project token revoked`);
  expect(changed.filter((c) => c.startsWith(busy.rig.rigId))).toEqual([]);
  // The next dispatch of the idle rig gets a new token.
  const again = await s.forRig(idle.rig, 300);
  expect(again.scope === 'repository' && gl.isProjectTokenLive(again.token)).toBe(true);
});
