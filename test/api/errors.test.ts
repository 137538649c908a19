// Cross-cutting behaviour of the management API: every route needs credentials, and every
// failure, including Fastify's own (unknown route, bad JSON, wrong content type, too large), has
// the contract's `{error: {code, message}}` shape.
import { randomUUID } from 'node:crypto';
import { ADMIN, newOwner, startHarness, type Harness } from '../helpers/harness';
import { expectError, expectInvalid } from '../helpers/api';

let h: Harness;
let ids: { town: string; rig: string; integration: string; dispatch: string; owner: string };

beforeAll(async () => {
  h = await startHarness({ worker: false });
  // Real ids, so an authenticated request would get past lookups: a 401 is the bearer's doing.
  const owner = newOwner();
  const town = await h.call<{ id: string }>('POST', '/api/towns', { name: 'auth', owner_id: owner });
  const rig = await h.call<{ id: string }>('POST', `/api/towns/${town.body.id}/rigs`, {
    name: 'r',
    git_url: 'https://git.example.com/a/b.git',
  });
  ids = { town: town.body.id, rig: rig.body.id, integration: randomUUID(), dispatch: randomUUID(), owner };
});
afterAll(async () => {
  await h?.close();
});

type Route = [method: string, path: (i: typeof ids) => string, body?: unknown];

// Every management route of the contract (and the rig's dispatch list).
const ROUTES: Route[] = [
  ['POST', () => '/api/towns', { name: 'x', owner_id: randomUUID() }],
  ['GET', (i) => `/api/towns/${i.town}`],
  ['PUT', (i) => `/api/towns/${i.town}/git-auth`, { tokens: [] }],
  ['POST', () => '/api/integrations', { provider: 'github', owner_id: randomUUID(), installation_id: 1, app_type: 'standard' }],
  ['GET', () => `/api/integrations?owner_id=${randomUUID()}`],
  ['GET', (i) => `/api/integrations/${i.integration}/repositories`],
  ['POST', (i) => `/api/towns/${i.town}/rigs`, { name: 'y', git_url: 'https://git.example.com/a/c.git' }],
  ['GET', (i) => `/api/rigs/${i.rig}`],
  ['PATCH', (i) => `/api/rigs/${i.rig}`, { name: 'renamed' }],
  ['GET', (i) => `/api/rigs/${i.rig}/dispatches`],
  ['POST', (i) => `/api/rigs/${i.rig}/dispatches`, { container_url: 'http://127.0.0.1:9/c' }],
  ['GET', (i) => `/api/dispatches/${i.dispatch}`],
  ['POST', (i) => `/api/dispatches/${i.dispatch}/stop`],
  ['GET', (i) => `/api/dispatches/${i.dispatch}/events`],
  ['POST', (i) => `/api/owners/${i.owner}/tokens`, { name: 'x' }],
  ['GET', (i) => `/api/owners/${i.owner}/tokens`],
  ['DELETE', (i) => `/api/owners/${i.owner}/tokens/${i.dispatch}`],
  ['POST', (i) => `/api/owners/${i.owner}/sign-in-links`],
  ['GET', (i) => `/api/owners/${i.owner}/sessions`],
  ['DELETE', (i) => `/api/owners/${i.owner}/sessions/${i.dispatch}`],
  ['DELETE', (i) => `/api/owners/${i.owner}/sessions`],
  // Last: by now the rig has the dispatch started above, so an authorised DELETE answers 409 and keeps it.
  ['DELETE', (i) => `/api/rigs/${i.rig}`],
];

const send = (method: string, path: string, body: unknown, headers: Record<string, string>) =>
  fetch(`${h.url}${path}`, {
    method,
    headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });

describe('admin authentication', () => {
  const CREDENTIALS: Array<[string, Record<string, string>]> = [
    ['no Authorization header', {}],
    ['a wrong bearer', { authorization: 'Bearer wrong-token-0123456789' }],
    ['the admin token with a suffix', { authorization: `Bearer ${ADMIN}x` }],
    ['an empty bearer', { authorization: 'Bearer ' }],
    ['Basic credentials', { authorization: `Basic ${Buffer.from(`admin:${ADMIN}`).toString('base64')}` }],
    ['a forged session cookie', { cookie: 'rc_session=v1.1700000000000.forged' }],
  ];

  const cases = ROUTES.flatMap(([method, path, body]) =>
    CREDENTIALS.map(
      ([what, headers]) =>
        [
          `${method} ${path({ town: ':town', rig: ':rig', integration: ':id', dispatch: ':id', owner: ':owner' })}`,
          what,
          method,
          path,
          body,
          headers,
        ] as const,
    ),
  );

  it.each(cases)('%s with %s → 401', async (_name, _what, method, path, body, headers) => {
    const res = await send(method, path(ids), body, headers);
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe('Bearer');
    expect(await res.json()).toEqual({ error: { code: 'unauthorized', message: expect.stringContaining('ADMIN_API_TOKEN') } });
  });

  it.each(ROUTES.map(([method, path, body]) => [method, path, body] as const))(
    '%s %p is reachable with the admin bearer (not 401)',
    async (method, path, body) => {
      const res = await send(method, path(ids), body, { authorization: `Bearer ${ADMIN}` });
      expect(res.status).not.toBe(401);
      expect(res.status).toBeLessThan(500);
    },
  );

  it('writes nothing for an unauthenticated request', async () => {
    const owner = randomUUID();
    await send('POST', '/api/towns', { name: 'intruder', owner_id: owner }, { authorization: 'Bearer nope' });
    await send('PATCH', `/api/rigs/${ids.rig}`, { name: 'hijacked' }, {});
    expect(await h.core.db.town.count({ where: { ownerId: owner } })).toBe(0);
    expect((await h.core.db.rig.findUnique({ where: { id: ids.rig } }))?.name).not.toBe('hijacked');
  });

  it('covers every management route the API documents', async () => {
    const doc = (await (await fetch(`${h.url}/docs/json`)).json()) as { paths: Record<string, Record<string, unknown>> };
    const documented = Object.entries(doc.paths)
      .filter(([p]) => p.startsWith('/api/') && !p.startsWith('/api/internal/'))
      .flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${p.replace(/\{[^}]+\}/g, ':id').replace(/\/:id/g, '/:id')}`))
      .sort();
    const tested = ROUTES.map(
      ([m, p]) => `${m} ${p({ town: ':id', rig: ':id', integration: ':id', dispatch: ':id', owner: ':id' }).split('?')[0]}`,
    ).sort();
    expect(tested).toEqual(documented);
  });
});

describe('error format', () => {
  it('answers an unknown route with a JSON 404', async () => {
    for (const [method, path] of [
      ['GET', '/api/nope'],
      ['DELETE', `/api/towns/${randomUUID()}`],
      ['GET', '/nothing-here'],
    ]) {
      const res = await send(method, path, undefined, { authorization: `Bearer ${ADMIN}` });
      expect(res.status).toBe(404);
      expect(res.headers.get('content-type')).toMatch(/^application\/json/);
      expect(await res.json()).toEqual({ error: { code: 'not_found', message: expect.stringContaining(path) } });
    }
  });

  it('answers a malformed JSON body with 400 invalid_request', async () => {
    const res = await fetch(`${h.url}/api/towns`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
      body: '{"name": "x",',
    });
    expectInvalid({ status: res.status, body: await res.json(), headers: res.headers }, 'body', /JSON/);
  });

  it('answers an empty JSON body and a JSON non-object with 400 naming the body', async () => {
    const empty = await fetch(`${h.url}/api/towns`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
      body: '',
    });
    expectInvalid({ status: empty.status, body: await empty.json(), headers: empty.headers }, 'body');
    expectInvalid(await h.call('POST', '/api/towns', ['not', 'an', 'object']), 'body');
    expectInvalid(await h.call('POST', '/api/towns', null), 'body');
  });

  it('answers a body that is not JSON with 415 unsupported_media_type', async () => {
    const res = await fetch(`${h.url}/api/towns`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'text/plain' },
      body: 'name=x',
    });
    expectError({ status: res.status, body: await res.json(), headers: res.headers }, 415, 'unsupported_media_type');
  });

  it('answers a body over 64 KiB with 413 payload_too_large and writes nothing', async () => {
    const owner = randomUUID();
    const body = JSON.stringify({ name: 'big', owner_id: owner, padding: 'x'.repeat(64 * 1024) });
    const res = await fetch(`${h.url}/api/towns`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
      body,
    });
    expectError({ status: res.status, body: await res.json(), headers: res.headers }, 413, 'payload_too_large');
    expect(await h.core.db.town.count({ where: { ownerId: owner } })).toBe(0);
    // Just under the limit is fine.
    const ok = await h.call('POST', '/api/towns', { name: 'big', owner_id: owner, padding: 'x'.repeat(60 * 1024) });
    expect(ok.status).toBe(201);
  });

  it('names a bad path parameter and a bad query parameter', async () => {
    expectInvalid(await h.call('GET', '/api/rigs/123'), 'rig_id', /rig_id: must be a UUID/);
    expectInvalid(await h.call('GET', '/api/integrations'), 'owner_id', /owner_id: is required/);
    expectInvalid(await h.call('GET', '/api/integrations?owner_id=abc'), 'owner_id', /UUID/);
  });
});
