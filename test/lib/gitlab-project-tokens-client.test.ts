// The GitLab client's project access token calls against the fake GitLab over real HTTP, and the
// fake's own rules they rely on: roles, plan, feature switch, the `api` scope, date expiry in the
// server's time zone, rotation that kills the old token, reuse detection, and a token that works
// on its own project only.
import { randomBytes } from 'node:crypto';
import { createGitlabClient } from '../../lib/providers/gitlab';
import { GITLAB_SCOPES } from '../../lib/providers/gitlab-fns';
import { ProjectTokenRefused, ProviderError, type GitlabClient } from '../../lib/providers/types';
import { FakeGitLab } from '../fakes/gitlab';

const CLIENT = { clientId: 'rc-pat-client', clientSecret: 'rc-pat-secret', redirectUri: 'http://127.0.0.1:9/cb' };
const DAY_MS = 86_400_000;

let fake: FakeGitLab;
let client: GitlabClient;
const failures: Error[] = [];

beforeAll(async () => {
  fake = await FakeGitLab.start();
  fake.registerApplication(CLIENT);
  client = createGitlabClient({ ...CLIENT, timeoutMs: 1000 });
});

afterEach(() => {
  fake.clearFailures();
  fake.clockOffsetMs = 0;
  fake.projectTokens.timeZoneOffsetHours = 0;
  fake.projectTokens.plan = 'premium';
  fake.projectTokens.enabled = true;
});

afterAll(async () => {
  const secrets = fake.issuedTokens();
  expect(failures.length).toBeGreaterThan(5);
  for (const err of failures) for (const secret of secrets) expect(err.message).not.toContain(secret);
  const log = JSON.stringify(fake.requests);
  for (const secret of secrets) expect(log).not.toContain(secret);
  await fake.close();
});

/** A user owning two projects, with a grant that has the scopes the service asks for (or `scopes`). */
function owner(scopes = GITLAB_SCOPES) {
  const user = fake.addUser({ username: `pat-${randomBytes(3).toString('hex')}` });
  const [mine, other] = fake.addProjects(user.id, 2);
  const grant = fake.grant(user.id, CLIENT.clientId, { scopes });
  return { user, mine, other, call: { baseUrl: fake.baseUrl, accessToken: grant.accessToken, projectId: mine.id } };
}

const dateIn = (days: number) => new Date(Date.now() + days * DAY_MS).toISOString().slice(0, 10);
const create = (call: { baseUrl: string; accessToken: string; projectId: number }, name = 'repo-connect rig test') =>
  client.createProjectAccessToken({ ...call, name, scopes: ['write_repository'], accessLevel: 30, expiresAt: dateIn(2) });

async function rejected<T extends Error>(promise: Promise<unknown>, type: new (...args: never[]) => T): Promise<T> {
  const err = await promise.then(
    () => {
      throw new Error('expected the call to fail');
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(type);
  failures.push(err as Error);
  return err as T;
}

it('creates a Developer token that reads and writes its own project over git and nothing else', async () => {
  const { mine, other, call } = owner();
  const created = await create(call);
  expect(created).toMatchObject({ id: expect.any(Number), expiresAt: dateIn(2) });
  expect(fake.gitAccess(created.token, mine.path_with_namespace, 'write')).toBe(true);
  expect(fake.gitAccess(created.token, other.path_with_namespace, 'read')).toBe(false);
  // The grant itself reaches both projects: that is what the project token takes away.
  expect(fake.gitAccess(call.accessToken, other.path_with_namespace, 'write')).toBe(true);
  const listed = await client.listProjectAccessTokens({ ...call, search: 'rig test' });
  expect(listed).toEqual([{ id: created.id, name: 'repo-connect rig test', active: true }]);
  expect(await client.listProjectAccessTokens({ ...call, search: 'nothing like it' })).toEqual([]);
});

it('a read_repository token reads but cannot push', async () => {
  const { mine, call } = owner();
  const created = await client.createProjectAccessToken({
    ...call,
    name: 'reader',
    scopes: ['read_repository'],
    accessLevel: 30,
    expiresAt: dateIn(2),
  });
  expect(fake.gitAccess(created.token, mine.path_with_namespace, 'read')).toBe(true);
  expect(fake.gitAccess(created.token, mine.path_with_namespace, 'write')).toBe(false);
});

it('says why GitLab refuses: grant without api, role below Maintainer, Free plan, feature switched off', async () => {
  const legacy = owner('read_api read_user write_repository');
  expect((await rejected(create(legacy.call), ProjectTokenRefused)).reason).toBe('insufficient_scope');

  const dev = owner();
  fake.setRole(dev.user.id, dev.mine.id, 'developer');
  const forbidden = await rejected(create(dev.call), ProjectTokenRefused);
  expect(forbidden).toMatchObject({ reason: 'forbidden', status: 403 });
  expect(forbidden.message).toMatch(/Maintainer or Owner/);
  fake.setRole(dev.user.id, dev.mine.id, 'maintainer');
  await expect(create(dev.call)).resolves.toMatchObject({ id: expect.any(Number) });

  const free = owner();
  fake.projectTokens.plan = 'free';
  expect((await rejected(create(free.call), ProjectTokenRefused)).reason).toBe('forbidden');
  fake.projectTokens.plan = 'premium';

  fake.projectTokens.enabled = false;
  expect((await rejected(create(free.call), ProjectTokenRefused)).reason).toBe('not_available');
  expect((await rejected(client.listProjectAccessTokens({ ...free.call, search: 'x' }), ProjectTokenRefused)).reason).toBe('not_available');
});

it('rotation kills the old token at once; rotating it again takes the new one down too (reuse detection)', async () => {
  const { mine, call } = owner();
  const first = await create(call);
  const second = await client.rotateProjectAccessToken({ ...call, tokenId: first.id, expiresAt: dateIn(2) });
  expect(second.id).not.toBe(first.id);
  expect(fake.isProjectTokenLive(first.token)).toBe(false);
  expect(fake.gitAccess(first.token, mine.path_with_namespace, 'read')).toBe(false);
  expect(fake.gitAccess(second.token, mine.path_with_namespace, 'write')).toBe(true);

  // A rotation whose answer was lost, tried again with the old id: GitLab revokes the family.
  const again = await rejected(client.rotateProjectAccessToken({ ...call, tokenId: first.id, expiresAt: dateIn(2) }), ProjectTokenRefused);
  expect(again).toMatchObject({ reason: 'token_gone', status: 401 });
  expect(fake.isProjectTokenLive(second.token)).toBe(false);
  expect(fake.projectTokens.stats.familiesRevoked).toBeGreaterThanOrEqual(1);
});

it('expires a token when its date starts on the server, earlier when the server is ahead of UTC', async () => {
  const { call } = owner();
  const token = await create(call);
  const midnight = Date.parse(`${token.expiresAt}T00:00:00Z`);
  fake.clockOffsetMs = midnight - Date.now() - 60_000; // one minute before the date starts in UTC
  expect(fake.isProjectTokenLive(token.token)).toBe(true);
  fake.projectTokens.timeZoneOffsetHours = 14; // a server on UTC+14 reached that date 14 h ago
  expect(fake.isProjectTokenLive(token.token)).toBe(false);
  fake.projectTokens.timeZoneOffsetHours = 0;
  fake.clockOffsetMs = midnight - Date.now();
  expect(fake.isProjectTokenLive(token.token)).toBe(false);
  // And an expired token cannot be rotated any more.
  expect(
    (await rejected(client.rotateProjectAccessToken({ ...call, tokenId: token.id, expiresAt: dateIn(5) }), ProjectTokenRefused)).reason,
  ).toBe('token_gone');
  // Dates that are not in the future are refused.
  expect((await rejected(create(call), ProjectTokenRefused)).reason).toBe('refused');
});

it('revokes; a token GitLab no longer knows is already_invalid, not an error', async () => {
  const { mine, call } = owner();
  const token = await create(call);
  await expect(client.revokeProjectAccessToken({ ...call, tokenId: token.id })).resolves.toBe('revoked');
  expect(fake.gitAccess(token.token, mine.path_with_namespace, 'read')).toBe(false);
  await expect(client.revokeProjectAccessToken({ ...call, tokenId: token.id })).resolves.toBe('already_invalid');
  await expect(client.revokeProjectAccessToken({ ...call, tokenId: 1 })).resolves.toBe('already_invalid');
});

it('reports outages and a rejected grant as provider errors, never as refusals', async () => {
  const { call } = owner();
  fake.failNext(1, { status: 503 });
  expect((await rejected(create(call), ProviderError)).code).toBe('provider_unavailable');
  fake.failNext(1, { status: 500, match: (method) => method === 'DELETE' });
  expect((await rejected(client.revokeProjectAccessToken({ ...call, tokenId: 5 }), ProviderError)).code).toBe('provider_unavailable');
  fake.failNext(1, { status: 200, hangMs: 3000 });
  expect((await rejected(create(call), ProviderError)).message).toMatch(/timed out/);
  expect((await rejected(create({ ...call, accessToken: 'not-a-token' }), ProviderError)).code).toBe('invalid_credentials');
});

it('sends no project-token call, and so no grant, to an instance outside the allowed list', async () => {
  const { call } = owner();
  const elsewhere = createGitlabClient({ ...CLIENT, timeoutMs: 1000, allowedBaseUrls: ['https://gitlab.example.com'] });
  const before = fake.requests.length;
  const { id } = await create(call);
  const calls = [
    () => elsewhere.listProjectAccessTokens({ ...call, search: '[rig x]' }),
    () => elsewhere.rotateProjectAccessToken({ ...call, tokenId: id, expiresAt: dateIn(2) }),
    () => elsewhere.revokeProjectAccessToken({ ...call, tokenId: id }),
    () => elsewhere.createProjectAccessToken({ ...call, name: 'x', scopes: ['read_repository'], accessLevel: 30, expiresAt: dateIn(2) }),
  ];
  for (const c of calls) expect((await rejected(c(), ProviderError)).code).toBe('reconnect_required');
  expect(fake.requests.length - before).toBe(1); // only the create made through the allowed client
});
