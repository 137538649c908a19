// The route groups' auth hooks on a small app of their own over the real session and token stores
// (Postgres, no Temporal): what each decides the caller is (`request.principal`), and what it
// answers when nobody is.
import { randomUUID } from 'node:crypto';
import Fastify, { type FastifyInstance } from 'fastify';
import { dashboardHook, principalHook } from '../../api/auth/hooks';
import { createOwnerTokenStore } from '../../api/auth/owner-tokens';
import { createAuthenticator, type Principal } from '../../api/auth/principal';
import { createSessionStore } from '../../api/auth/session-store';
import { registerErrorHandler } from '../../api/errors';
import { ensureOwner } from '../../api/services/owners';
import { loadConfig } from '../../lib/config';
import { createDb, type Db } from '../../lib/db';
import { newOpaqueToken } from '../../lib/secrets';
import { ADMIN } from '../helpers/harness';
import { testDatabaseUrl } from '../helpers/test-env';

const env = {
  NODE_ENV: 'test',
  ADMIN_API_TOKEN: ADMIN,
  SECRETS_KEY: Buffer.alloc(32, 7).toString('base64'),
  PUBLIC_URL: 'http://dashboard.test',
};
const config = loadConfig(env);
let db: Db;
let app: FastifyInstance;
let adminCookie: string;
let ownerCookie: string;
let ownerToken: string;
const ownerId = randomUUID();

async function appWith(cfg = config): Promise<FastifyInstance> {
  const sessions = createSessionStore({ db, config: cfg });
  const auth = createAuthenticator({ config: cfg, sessions, ownerTokens: createOwnerTokenStore({ db }) });
  const a = Fastify();
  a.decorateRequest<Principal | null>('principal', null);
  registerErrorHandler(a);
  const who = async (req: { principal: Principal | null }) => ({ principal: req.principal });
  a.get('/open', who);
  await a.register(async (group) => {
    group.addHook('onRequest', principalHook(cfg, auth));
    group.get('/api/who', who);
    group.post('/api/who', who);
  });
  await a.register(async (group) => {
    group.addHook('onRequest', dashboardHook(cfg, auth));
    group.get('/page', who);
  });
  await a.ready();
  return a;
}

beforeAll(async () => {
  db = createDb(testDatabaseUrl(), { max: 2 });
  app = await appWith();
  await ensureOwner(db, ownerId);
  const sessions = createSessionStore({ db, config });
  adminCookie = `rc_session=${(await sessions.create({ ownerId: null })).value}`;
  ownerCookie = `rc_session=${(await sessions.create({ ownerId })).value}`;
  ownerToken = (await createOwnerTokenStore({ db }).create(ownerId, 'ci')).token;
});
afterAll(async () => {
  await app?.close();
  await db?.$disconnect();
});

const principalOf = async (method: 'GET' | 'POST', url: string, headers: Record<string, string>, a = app) => {
  const res = await a.inject({ method, url, headers });
  return [res.statusCode, res.json().principal];
};

it('sets the principal the credentials prove: admin by bearer or session, owner by API token or session', async () => {
  expect(await principalOf('GET', '/api/who', { authorization: `Bearer ${ADMIN}` })).toEqual([200, { kind: 'admin', via: 'bearer' }]);
  expect(await principalOf('GET', '/api/who', { cookie: adminCookie })).toEqual([
    200,
    { kind: 'admin', via: 'cookie', sessionId: expect.any(String) },
  ]);
  expect(await principalOf('POST', '/api/who', { cookie: adminCookie, origin: 'http://dashboard.test' })).toEqual([
    200,
    { kind: 'admin', via: 'cookie', sessionId: expect.any(String) },
  ]);
  expect(await principalOf('GET', '/page', { cookie: adminCookie })).toEqual([200, expect.objectContaining({ kind: 'admin' })]);
  expect(await principalOf('GET', '/api/who', { authorization: `Bearer ${ownerToken}` })).toEqual([
    200,
    { kind: 'owner', ownerId, via: 'token' },
  ]);
  expect(await principalOf('GET', '/page', { cookie: ownerCookie })).toEqual([
    200,
    { kind: 'owner', ownerId, via: 'cookie', sessionId: expect.any(String) },
  ]);
});

it('leaves the principal null outside a guarded group, even with credentials', async () => {
  expect(await principalOf('GET', '/open', { authorization: `Bearer ${ADMIN}` })).toEqual([200, null]);
});

it('refuses without credentials (401 Bearer): wrong, container-shaped or unknown owner bearers even beside a valid cookie', async () => {
  for (const headers of [
    {},
    { authorization: 'Bearer wrong' },
    { authorization: 'Bearer wrong', cookie: adminCookie },
    { authorization: `Bearer ${newOpaqueToken('rcc')}` },
    { authorization: `Bearer ${newOpaqueToken('rco')}` },
  ]) {
    const res = await app.inject({ method: 'GET', url: '/api/who', headers });
    expect([res.statusCode, res.headers['www-authenticate'], res.json().error.code]).toEqual([401, 'Bearer', 'unauthorized']);
  }
  const crossSite = await app.inject({ method: 'POST', url: '/api/who', headers: { cookie: ownerCookie, origin: 'https://evil.example' } });
  expect([crossSite.statusCode, crossSite.json().error.code]).toEqual([403, 'csrf_rejected']);
});

it('treats a malformed or unknown cookie as no session, never a 500', async () => {
  for (const cookie of [
    'rc_session=%E0%A4%A',
    'rc_session=',
    'rc_session',
    `rc_session=${'x'.repeat(5000)}`,
    'rc_session=a; rc_session=b',
  ]) {
    const page = await app.inject({ method: 'GET', url: '/page', headers: { cookie } });
    expect([cookie, page.statusCode]).toEqual([cookie, 302]);
    const api = await app.inject({ method: 'GET', url: '/api/who', headers: { cookie } });
    expect([cookie, api.statusCode]).toEqual([cookie, 401]);
  }
});

it('ends admin sessions when ADMIN_API_TOKEN changes, and sessions past their 12 hours', async () => {
  const rotated = await appWith(loadConfig({ ...env, ADMIN_API_TOKEN: `${ADMIN}-rotated` }));
  expect((await rotated.inject({ method: 'GET', url: '/api/who', headers: { cookie: adminCookie } })).statusCode).toBe(401);
  expect((await rotated.inject({ method: 'GET', url: '/api/who', headers: { cookie: ownerCookie } })).statusCode).toBe(200);
  await rotated.close();
  const sessions = createSessionStore({ db, config });
  const old = await sessions.create({ ownerId }, new Date(Date.now() - 12 * 3600_000 - 1000));
  expect((await app.inject({ method: 'GET', url: '/api/who', headers: { cookie: `rc_session=${old.value}` } })).statusCode).toBe(401);
});

it('sends an anonymous browser to sign-in from a page', async () => {
  const res = await app.inject({ method: 'GET', url: '/page?x=1' });
  expect([res.statusCode, res.headers.location]).toEqual([302, '/login?next=%2Fpage%3Fx%3D1']);
});
