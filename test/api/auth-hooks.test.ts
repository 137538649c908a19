// The route groups' auth hooks on a small app of their own (no database, no Temporal): what each
// decides the caller is (`request.principal`), and what it answers when nobody is.
import Fastify, { type FastifyInstance } from 'fastify';
import { adminHook, dashboardHook } from '../../api/auth/hooks';
import type { Principal } from '../../api/auth/principal';
import { newSessionValue } from '../../api/auth/session-cookie';
import { registerErrorHandler } from '../../api/errors';
import { loadConfig } from '../../lib/config';
import { ADMIN } from '../helpers/harness';

const config = loadConfig({
  NODE_ENV: 'test',
  ADMIN_API_TOKEN: ADMIN,
  SECRETS_KEY: Buffer.alloc(32, 7).toString('base64'),
  PUBLIC_URL: 'http://dashboard.test',
});
const cookie = `rc_session=${encodeURIComponent(newSessionValue(config))}`;
let app: FastifyInstance;

beforeAll(async () => {
  app = Fastify();
  app.decorateRequest('principal', null as Principal | null);
  registerErrorHandler(app);
  const who = async (req: { principal: Principal | null }) => ({ principal: req.principal });
  app.get('/open', who);
  await app.register(async (group) => {
    group.addHook('onRequest', adminHook(config));
    group.get('/api/who', who);
    group.post('/api/who', who);
  });
  await app.register(async (group) => {
    group.addHook('onRequest', dashboardHook(config));
    group.get('/page', who);
  });
  await app.ready();
});
afterAll(async () => app?.close());

const principalOf = async (method: 'GET' | 'POST', url: string, headers: Record<string, string>) => {
  const res = await app.inject({ method, url, headers });
  return [res.statusCode, res.json().principal];
};

it('sets the principal the credentials prove: admin by bearer or by session cookie', async () => {
  expect(await principalOf('GET', '/api/who', { authorization: `Bearer ${ADMIN}` })).toEqual([200, { kind: 'admin', via: 'bearer' }]);
  expect(await principalOf('GET', '/api/who', { cookie })).toEqual([200, { kind: 'admin', via: 'cookie' }]);
  expect(await principalOf('POST', '/api/who', { cookie, origin: 'http://dashboard.test' })).toEqual([
    200,
    { kind: 'admin', via: 'cookie' },
  ]);
  expect(await principalOf('GET', '/page', { cookie })).toEqual([200, { kind: 'admin', via: 'cookie' }]);
});

it('leaves the principal null outside a guarded group, even with credentials', async () => {
  expect(await principalOf('GET', '/open', { authorization: `Bearer ${ADMIN}` })).toEqual([200, null]);
});

it('refuses without credentials (401 Bearer), with a wrong bearer even beside a valid cookie, and cross-site cookie writes (403)', async () => {
  for (const headers of [{}, { authorization: 'Bearer wrong' }, { authorization: 'Bearer wrong', cookie }]) {
    const res = await app.inject({ method: 'GET', url: '/api/who', headers });
    expect([res.statusCode, res.headers['www-authenticate'], res.json().error.code]).toEqual([401, 'Bearer', 'unauthorized']);
  }
  const crossSite = await app.inject({ method: 'POST', url: '/api/who', headers: { cookie, origin: 'https://evil.example' } });
  expect([crossSite.statusCode, crossSite.json().error.code]).toEqual([403, 'csrf_rejected']);
});

it('sends an anonymous browser to sign-in from a page', async () => {
  const res = await app.inject({ method: 'GET', url: '/page?x=1' });
  expect([res.statusCode, res.headers.location]).toEqual([302, '/login?next=%2Fpage%3Fx%3D1']);
});
