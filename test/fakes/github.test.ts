// The fake GitHub's own rules, where a client test would not notice them being wrong: JWT claim
// checks, token failures, a request log without secrets, and webhook signing.
import { createHmac, sign } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createGithubClient } from '../../lib/providers/github';
import type { GithubClient } from '../../lib/providers/types';
import { FakeGitHub, type FakeGithubApp } from './github';

let fake: FakeGitHub;
let standard: FakeGithubApp;
let lite: FakeGithubApp;
let client: GithubClient;

const install = (app: FakeGithubApp) =>
  fake.addInstallation({ appId: app.appId, account: { login: `org-${Math.random().toString(36).slice(2, 8)}` }, repositories: 2 });

beforeAll(async () => {
  fake = await FakeGitHub.start();
  [standard, lite] = await Promise.all([
    fake.createApp({ slug: 'rc-standard' }),
    fake.createApp({ slug: 'rc-lite', permissions: { contents: 'read', metadata: 'read' } }),
  ]);
  client = createGithubClient({ apiUrl: fake.apiUrl, apps: { standard: fake.appConfig(standard) } });
});

afterAll(() => fake.close());

describe('the fake itself', () => {
  const jwt = (privateKeyPem: string, claims: Record<string, unknown>) => {
    const enc = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const unsigned = `${enc({ alg: 'RS256', typ: 'JWT' })}.${enc(claims)}`;
    return `${unsigned}.${sign('RSA-SHA256', Buffer.from(unsigned), privateKeyPem).toString('base64url')}`;
  };
  const getInstallation = (id: number, token: string) =>
    fetch(`${fake.apiUrl}/app/installations/${id}`, { headers: { authorization: `Bearer ${token}` } });

  it('checks JWT claims the way GitHub does', async () => {
    const { installationId } = install(standard);
    const now = Math.floor(Date.now() / 1000);
    const good = await getInstallation(installationId, jwt(standard.privateKeyPem, { iss: standard.appId, iat: now - 30, exp: now + 540 }));
    expect(good.status).toBe(200);
    const tooLong = await getInstallation(installationId, jwt(standard.privateKeyPem, { iss: standard.appId, iat: now, exp: now + 3600 }));
    expect([tooLong.status, (await tooLong.json()).message]).toEqual([401, "'Expiration time' claim ('exp') is too far in the future."]);
    const expired = await getInstallation(
      installationId,
      jwt(standard.privateKeyPem, { iss: standard.appId, iat: now - 700, exp: now - 100 }),
    );
    expect(expired.status).toBe(401);
    const otherIssuer = await getInstallation(installationId, jwt(standard.privateKeyPem, { iss: lite.appId, iat: now, exp: now + 500 }));
    expect([otherIssuer.status, (await otherIssuer.json()).message]).toEqual([401, 'A JSON web token could not be decoded']);
  });

  it('answers 401 for unknown tokens and 403 for tokens of suspended installations', async () => {
    const unknown = await fetch(`${fake.apiUrl}/installation/repositories`, { headers: { authorization: 'token ghs_nope' } });
    expect([unknown.status, (await unknown.json()).message]).toEqual([401, 'Bad credentials']);
    const { installationId, repositories } = install(standard);
    const { token } = await client.mintInstallationToken('standard', installationId, [repositories[0].id]);
    fake.suspend(installationId);
    expect((await fetch(`${fake.apiUrl}/installation/repositories`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(403);
    expect(fake.isTokenLive(token)).toBe(false);
    fake.unsuspend(installationId);
    expect(fake.isTokenLive(token)).toBe(true);
  });

  it('keeps tokens out of its request log', async () => {
    const { installationId, repositories } = install(standard);
    const minted = await Promise.all([1, 2, 3].map(() => client.mintInstallationToken('standard', installationId, [repositories[0].id])));
    for (const { token } of minted) {
      await client.verifyInstallationToken(token);
      await client.revokeInstallationToken(token);
    }
    const log = JSON.stringify(fake.requests);
    expect(fake.requests.filter((r) => r.path === '/installation/token' && r.status === 204)).toHaveLength(3);
    for (const token of fake.issuedTokens()) expect(log).not.toContain(token.slice(4, 40));
  });

  it('delivers webhooks with GitHub headers and an HMAC signature', async () => {
    const received: Array<{ headers: Record<string, unknown>; body: string }> = [];
    const sink = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        received.push({ headers: req.headers, body });
        res.writeHead(202).end();
      });
    });
    await new Promise<void>((r) => sink.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(sink.address() as AddressInfo).port}/webhooks/github`;
    const { installationId } = install(standard);
    const payload = fake.installationWebhookPayload(installationId, 'suspend');
    const res = await FakeGitHub.deliverWebhook(url, 'whsec', 'installation', payload, { deliveryId: 'd-1' });
    await FakeGitHub.deliverWebhook(url, 'whsec', 'installation', payload, { badSignature: true });
    await new Promise<void>((r) => sink.close(() => r()));

    expect(res.status).toBe(202);
    const [good, bad] = received;
    expect(good.headers).toMatchObject({
      'x-github-event': 'installation',
      'x-github-delivery': 'd-1',
      'content-type': 'application/json',
    });
    expect(good.headers['x-hub-signature-256']).toBe(`sha256=${createHmac('sha256', 'whsec').update(good.body).digest('hex')}`);
    expect(bad.headers['x-hub-signature-256']).not.toBe(`sha256=${createHmac('sha256', 'whsec').update(bad.body).digest('hex')}`);
    expect(JSON.parse(good.body)).toMatchObject({ action: 'suspend', installation: { id: installationId, app_slug: 'rc-standard' } });
  });
});

describe("the fake's user authorization", () => {
  const token = async (fields: Record<string, string>) =>
    (await (
      await fetch(`${fake.webUrl}/login/oauth/access_token`, {
        method: 'POST',
        headers: { accept: 'application/json', 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams(fields),
      })
    ).json()) as Record<string, unknown>;

  it('refuses a redirect_uri that is not a callback URL of the app, and codes that are used twice', async () => {
    const app = await fake.createApp({ slug: 'rc-oauth', callbackUrls: ['http://127.0.0.1/cb'] });
    const wrong = await fetch(`${fake.webUrl}/login/oauth/authorize?client_id=${app.clientId}&redirect_uri=http://evil.example/cb`);
    expect(wrong.status).toBe(400);
    const user = fake.addUser({ login: 'oauth-ann' });
    const code = fake.oauth.newCode(app.clientId, user.id, null);
    const client = { client_id: app.clientId, client_secret: app.clientSecret };
    expect(await token({ ...client, code })).toMatchObject({ access_token: expect.stringMatching(/^ghu_/), expires_in: 28800 });
    expect(await token({ ...client, code })).toMatchObject({ error: 'bad_verification_code' });
  });

  it("expires user tokens, and lists only the token's app's installations that the person can see", async () => {
    const app = await fake.createApp({ slug: 'rc-oauth-2' });
    const user = fake.addUser({ login: 'oauth-ben' });
    const mine = fake.addInstallation({
      appId: app.appId,
      account: { login: 'ben-org' },
      repositories: 1,
      users: [user.id],
    }).installationId;
    fake.addInstallation({ appId: app.appId, account: { login: 'not-ben' }, repositories: 1 });
    fake.addInstallation({ appId: standard.appId, account: { login: 'ben-other-app' }, repositories: 1, users: [user.id] });
    const { access_token } = await token({
      client_id: app.clientId,
      client_secret: app.clientSecret,
      code: fake.oauth.newCode(app.clientId, user.id, null),
    });
    const list = await fetch(`${fake.apiUrl}/user/installations`, { headers: { authorization: `Bearer ${String(access_token)}` } });
    expect(((await list.json()) as { installations: Array<{ id: number }> }).installations.map((i) => i.id)).toEqual([mine]);
    fake.oauth.userTokenLifetimeSeconds = 0;
    const expired = await token({
      client_id: app.clientId,
      client_secret: app.clientSecret,
      code: fake.oauth.newCode(app.clientId, user.id, null),
    });
    fake.oauth.userTokenLifetimeSeconds = 8 * 3600;
    const me = await fetch(`${fake.apiUrl}/user`, { headers: { authorization: `Bearer ${String(expired.access_token)}` } });
    expect(me.status).toBe(401);
  });
});
