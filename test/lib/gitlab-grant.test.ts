// The shared GitLab grant against the fake GitLab and the real Postgres, reached through a proxy
// that goes down as the rotated pair is saved. GitLab kills the old refresh and access tokens the
// moment it answers a refresh, so the pair it answered is the grant: losing it means a reconnect.
import { randomBytes } from 'node:crypto';
import { createDb, type Db } from '../../lib/db';
import { createGitlabGrants } from '../../lib/gitlab-grant';
import { createGitlabClient } from '../../lib/providers/gitlab';
import { GITLAB_SCOPES } from '../../lib/providers/gitlab-fns';
import { createSecretBox, type SecretBox } from '../../lib/secrets';
import { gitlabTokenContext } from '../../lib/secret-contexts';
import { FakeGitLab } from '../fakes/gitlab';
import { storeGitlabIntegration } from '../helpers/gitlab-rows';
import { PgProxy } from '../helpers/pg-proxy';
import { testDatabaseUrl } from '../helpers/test-env';

const CLIENT = { clientId: 'rc-grant', clientSecret: 'rc-grant-secret', redirectUri: 'http://127.0.0.1:9/cb' };

let proxy: PgProxy;
let db: Db;
let secrets: SecretBox;
let gl: FakeGitLab;

beforeAll(async () => {
  proxy = await PgProxy.start(testDatabaseUrl());
  db = createDb(proxy.url, { max: 3 });
  secrets = createSecretBox([randomBytes(32)]);
  gl = await FakeGitLab.start();
  gl.registerApplication(CLIENT);
});
afterAll(async () => {
  await gl?.close();
  await db?.$disconnect();
  await proxy?.close();
});

/** A GitLab integration whose stored access token has expired: the next call refreshes. */
async function expiredGrant() {
  const user = gl.addUser({ username: `gr-${randomBytes(3).toString('hex')}` });
  const grant = gl.grant(user.id, CLIENT.clientId, { scopes: GITLAB_SCOPES });
  const { id } = await storeGitlabIntegration(db, secrets, { baseUrl: gl.baseUrl, user, grant, expiresAt: new Date(Date.now() - 1000) });
  return { id, grant };
}

it('a rotated pair Postgres could not take is kept and saved once Postgres is back: no reconnect', async () => {
  const rotations: string[] = [];
  const grants = createGitlabGrants({
    db,
    secrets,
    gitlab: createGitlabClient({ ...CLIENT, timeoutMs: 2000 }),
    onRotated: async (integrationId) => void rotations.push(integrationId),
  });
  const { id, grant } = await expiredGrant();
  const refreshes = gl.stats.refreshes;

  // Postgres goes away as the pair GitLab answered is being saved, and stays away past the retries.
  const cut = proxy.cutOn('token_version + 1', 'before');
  await expect(grants.getValidAccessToken(id, 300)).rejects.toThrow();
  await cut;
  expect(gl.stats.refreshes - refreshes).toBe(1);
  expect(gl.isAccessTokenLive(grant.accessToken)).toBe(false); // GitLab rotated: the stored pair is dead

  proxy.up();
  expect(rotations).toEqual([]);
  const again = await grants.getValidAccessToken(id, 300);
  expect(gl.stats.refreshes - refreshes).toBe(1); // no second refresh (it would have been refused)
  expect(rotations).toEqual([id]); // the integration's dispatches are told once it is saved
  expect(gl.isAccessTokenLive(again.accessToken)).toBe(true);
  const row = await db.platformIntegration.findUniqueOrThrow({ where: { id } });
  expect(row.status).toBe('active');
  expect(secrets.decrypt(row.accessTokenEnc!, gitlabTokenContext(id, 'access'))).toBe(again.accessToken);
}, 30_000);

it('a pair whose save failed for a moment is saved by the retries, and the caller gets its token', async () => {
  const grants = createGitlabGrants({ db, secrets, gitlab: createGitlabClient({ ...CLIENT, timeoutMs: 2000 }) });
  const { id } = await expiredGrant();
  const cut = proxy.cutOn('token_version + 1', 'before');
  const pending = grants.getValidAccessToken(id, 300);
  await cut;
  setTimeout(() => proxy.up(), 1200); // back within the retries
  const got = await pending;
  expect(got.refreshed).toBe(true);
  expect(gl.isAccessTokenLive(got.accessToken)).toBe(true);
  const row = await db.platformIntegration.findUniqueOrThrow({ where: { id } });
  expect(secrets.decrypt(row.accessTokenEnc!, gitlabTokenContext(id, 'access'))).toBe(got.accessToken);
}, 30_000);
