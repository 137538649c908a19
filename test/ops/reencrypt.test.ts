// SECRETS_KEY rotation: rows written under the old key (a town token, a GitLab grant, a dispatch's
// container token and lease, a GitHub user's token pair) are rewritten under the new one by lib/reencrypt.ts, after which a
// service that knows only the new key still serves them.
import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { FakeContainerHost } from '../fakes/container';
import { FakeGitLab } from '../fakes/gitlab';
import { eventually, newOwner, startHarness, type Harness } from '../helpers/harness';
import { countUnderKey, keyIdOfCiphertext, reencryptSecrets } from '../../lib/reencrypt';
import { createSecretBox, keyIdOf } from '../../lib/secrets';
import {
  containerTokenContext,
  gitlabTokenContext,
  identityTokenContext,
  leaseTokenContext,
  pendingRevocationContext,
  townTokenContext,
} from '../../lib/secret-contexts';
import { dispatchTo, pull } from '../helpers/scenario';
import { spawnService, type ServiceProcess } from './service-process';

const CLIENT = { clientId: 'rc-rotate', clientSecret: 'rc-rotate-secret', redirectUri: 'http://127.0.0.1/integrations/gitlab/callback' };
const oldKey = randomBytes(32);
const newKey = randomBytes(32);
const TOWN_TOKEN = `town-${randomBytes(18).toString('hex')}`;

let gl: FakeGitLab;
let containers: FakeContainerHost;
let before: Harness;
let after: Harness | undefined;
let db: Client;
let worker: ServiceProcess | undefined;

beforeAll(async () => {
  gl = await FakeGitLab.start();
  gl.registerApplication(CLIENT);
  containers = await FakeContainerHost.start();
  before = await startHarness({
    env: {
      SECRETS_KEY: oldKey.toString('base64'),
      GITLAB_URL: gl.baseUrl,
      GITLAB_CLIENT_ID: CLIENT.clientId,
      GITLAB_CLIENT_SECRET: CLIENT.clientSecret,
    },
  });
  db = new Client({ connectionString: before.core.config.databaseUrl });
  await db.connect();
});
afterAll(async () => {
  worker?.kill('SIGKILL');
  await db?.end();
  await after?.close();
  await before?.close();
  await containers?.close();
  await gl?.close();
});

it('rewrites every secret under the new key, and the service then runs without the old one', async () => {
  // Rows under the old key: a town token, a dispatch using it (container token + lease), a GitLab grant.
  const owner = newOwner();
  const town = await before.call<{ id: string }>('POST', '/api/towns', { name: 'rotate', owner_id: owner });
  expect(
    (await before.call('PUT', `/api/towns/${town.body.id}/git-auth`, { tokens: [{ host: 'git.example.com', token: TOWN_TOKEN }] })).status,
  ).toBe(204);
  const rig = await before.call<{ id: string }>('POST', `/api/towns/${town.body.id}/rigs`, {
    name: 'legacy',
    git_url: 'https://git.example.com/acme/legacy.git',
  });
  const d = await dispatchTo(before, containers, rig.body.id, 'rotate');
  await containers.waitForPush(d.container, (p) => p.generation === 1);
  const user = gl.addUser({ username: `rotate-${Date.now()}` });
  const grant = gl.grant(user.id, CLIENT.clientId);
  const integration = await before.call<{ id: string }>('POST', '/api/integrations', {
    provider: 'gitlab',
    owner_id: owner,
    access_token: grant.accessToken,
    refresh_token: grant.refreshToken,
    expires_at: grant.expiresAt.toISOString(),
  });
  expect(integration.status).toBe(201);
  // A GitHub account's user-to-server pair, kept for installation checks.
  const ghu = `ghu_${randomBytes(27).toString('base64url')}`;
  const ghr = `ghr_${randomBytes(57).toString('base64url')}`;
  const identityOwner = await before.api.services.identities.signIn(
    {
      provider: 'github',
      origin: 'https://github.example',
      id: Date.now(),
      login: 'rotate',
      name: null,
      avatarUrl: null,
      tokens: { accessToken: ghu, refreshToken: ghr, expiresAt: new Date(Date.now() + 3600_000), refreshTokenExpiresAt: null },
    },
    null,
  );
  const identity = await before.core.db.ownerIdentity.findFirstOrThrow({ where: { ownerId: identityOwner } });
  await before.stopWorker(); // nothing else writes these rows meanwhile
  // A GitHub token whose revocation failed, waiting for the worker's retries (no worker sweeps now).
  const unrevoked = `ghs_${randomBytes(27).toString('base64url')}`;
  await before.core.revocations.enqueue([
    {
      token: unrevoked,
      expiresAt: new Date(Date.now() + 3600_000),
      dispatchId: d.dispatchId,
      reason: 'rotation test',
      error: 'provider_unavailable',
    },
  ]);

  const oldId = keyIdOf(oldKey);
  const mine = await countUnderKey(db, oldId);
  expect(mine).toEqual({
    'town_git_auth.token_enc': 1,
    'platform_integrations.access_token_enc': 1,
    'platform_integrations.refresh_token_enc': 1,
    'agent_dispatches.container_token_enc': 1,
    'token_leases.token_enc': 1,
    'token_leases.previous_token_enc': 0,
    'owner_identities.user_token_enc': 1,
    'owner_identities.refresh_token_enc': 1,
    'rig_project_tokens.token_enc': 0,
    'pending_revocations.token_enc': 1,
  });

  // Rotation: the new key first, the old one only decrypts. Rows of other tests (other keys) are left alone.
  const counts = await reencryptSecrets(db, createSecretBox([newKey, oldKey]), 2);
  expect(counts.reduce((n, c) => n + c.rewritten, 0)).toBe(8);
  expect(Object.values(await countUnderKey(db, oldId)).every((n) => n === 0)).toBe(true);

  // Every rewritten value opens with the new key alone, in its own row's context.
  const box = createSecretBox([newKey]);
  const one = async (sql: string, id: string) => (await db.query<{ v: string }>(sql, [id])).rows[0].v;
  const townEnc = await one('SELECT token_enc AS v FROM town_git_auth WHERE town_id = $1', town.body.id);
  expect(keyIdOfCiphertext(townEnc)).toBe(keyIdOf(newKey));
  expect(box.decrypt(townEnc, townTokenContext(town.body.id, 'git.example.com'))).toBe(TOWN_TOKEN);
  expect(
    box.decrypt(await one('SELECT token_enc AS v FROM token_leases WHERE dispatch_id = $1', d.dispatchId), leaseTokenContext(d.dispatchId)),
  ).toBe(TOWN_TOKEN);
  expect(
    box.decrypt(
      await one('SELECT container_token_enc AS v FROM agent_dispatches WHERE id = $1', d.dispatchId),
      containerTokenContext(d.dispatchId),
    ),
  ).toBe(d.containerToken);
  const pending = await db.query<{ id: string; v: string }>(
    'SELECT id::text, token_enc AS v FROM pending_revocations WHERE dispatch_id = $1',
    [d.dispatchId],
  );
  expect(box.decrypt(pending.rows[0].v, pendingRevocationContext(pending.rows[0].id))).toBe(unrevoked);
  const id = integration.body.id;
  expect(
    box.decrypt(await one('SELECT access_token_enc AS v FROM platform_integrations WHERE id = $1', id), gitlabTokenContext(id, 'access')),
  ).toBe(grant.accessToken);
  expect(
    box.decrypt(await one('SELECT refresh_token_enc AS v FROM platform_integrations WHERE id = $1', id), gitlabTokenContext(id, 'refresh')),
  ).toBe(grant.refreshToken);

  expect(
    box.decrypt(
      await one('SELECT user_token_enc AS v FROM owner_identities WHERE id = $1', identity.id),
      identityTokenContext(identity.id, 'access'),
    ),
  ).toBe(ghu);
  expect(
    box.decrypt(
      await one('SELECT refresh_token_enc AS v FROM owner_identities WHERE id = $1', identity.id),
      identityTokenContext(identity.id, 'refresh'),
    ),
  ).toBe(ghr);

  // A second run has nothing left to do.
  const again = await reencryptSecrets(db, createSecretBox([newKey, oldKey]));
  expect(again.reduce((n, c) => n + c.rewritten, 0)).toBe(0);

  // An API and a worker process that have only the new key serve, stop and revoke the dispatch.
  // Same deployment, new key: its GitLab stays configured (a grant's base URL must be an allowed one).
  after = await startHarness({ env: { SECRETS_KEY: newKey.toString('base64'), GITLAB_URL: gl.baseUrl }, worker: false });
  const pulled = await pull(after, rig.body.id, d.containerToken);
  expect(pulled.status).toBe(200);
  expect(pulled.body.token).toBe(TOWN_TOKEN);
  const repos = await after.call<{ repositories: unknown[] }>('GET', `/api/integrations/${id}/repositories`);
  expect(repos.status).toBe(200); // decrypts the GitLab grant to call GitLab
  worker = await spawnService({
    role: 'worker',
    config: before.core.config,
    env: { SECRETS_KEY: newKey.toString('base64') },
    label: 'new-key-worker',
  });
  expect((await after.call('POST', `/api/dispatches/${d.dispatchId}/stop`)).status).toBe(202);
  await eventually(
    async () => (await after!.call<{ status: string }>('GET', `/api/dispatches/${d.dispatchId}`)).body.status === 'stopped',
    20_000,
    'stopped',
  );
});
