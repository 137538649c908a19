// The authorization matrix: every route the app serves (its own list, so a new route that is not
// in TABLE fails here) against owner A's credentials on owner B's rows (404, exactly like a missing
// row), A naming B as owner_id (403), a container token and a deleted owner token (401, or sign-in
// for pages), A on A's own rows and admin on B's (allowed).
import { randomUUID } from 'node:crypto';
import type { Harness } from '../helpers/harness';
import { dashboardWorld, raw, startDashboard, type DashboardWorld } from '../dashboard/dashboard-world';

interface Ids {
  owner: string;
  town: string;
  rig: string;
  integration: string;
  dispatch: string;
  token: string;
  session: string;
}

interface Case {
  /** The request for the owner whose ids are given. */
  path: (i: Ids) => string;
  body?: (i: Ids) => unknown;
  /** Where the route takes an owner_id: naming another owner answers 403. */
  names?: 'body' | 'query';
  /** The route reaches rows by id: another owner's answer 404. */
  byId?: boolean;
  /** Only admin may call it (owners get 403 on their own id too). */
  adminOnly?: boolean;
}

const NO_ROUTE_CHECKS = /^(\/healthz|\/metrics|\/docs|\/assets\/|\/login|\/logout|\/webhooks\/)/;
const CONTAINER_ROUTE = 'POST /api/internal/rigs/:rig_id/git-token';

// Every route an admin or owner reaches. Keys are `METHOD url` as the app registers them.
const TABLE: Record<string, Case> = {
  'POST /api/towns': { path: () => '/api/towns', body: (i) => ({ name: 'm', owner_id: i.owner }), names: 'body' },
  'GET /api/towns/:town_id': { path: (i) => `/api/towns/${i.town}`, byId: true },
  'PUT /api/towns/:town_id/git-auth': { path: (i) => `/api/towns/${i.town}/git-auth`, body: () => ({ tokens: [] }), byId: true },
  'POST /api/integrations': {
    path: () => '/api/integrations',
    body: (i) => ({ provider: 'gitlab', owner_id: i.owner, access_token: 'a', refresh_token: 'r', expires_at: new Date().toISOString() }),
    names: 'body',
  },
  'GET /api/integrations': { path: (i) => `/api/integrations?owner_id=${i.owner}`, names: 'query' },
  'GET /api/integrations/:integration_id/repositories': { path: (i) => `/api/integrations/${i.integration}/repositories`, byId: true },
  'POST /api/towns/:town_id/rigs': {
    path: (i) => `/api/towns/${i.town}/rigs`,
    body: () => ({ name: `r-${randomUUID()}`, git_url: 'https://git.example.com/a/b.git' }),
    byId: true,
  },
  'GET /api/rigs/:rig_id': { path: (i) => `/api/rigs/${i.rig}`, byId: true },
  'PATCH /api/rigs/:rig_id': { path: (i) => `/api/rigs/${i.rig}`, body: () => ({ default_branch: 'main' }), byId: true },
  // The rig keeps its running dispatch, so an allowed DELETE answers 409 and the rig stays for the other cases.
  'DELETE /api/rigs/:rig_id': { path: (i) => `/api/rigs/${i.rig}`, byId: true },
  'GET /api/rigs/:rig_id/dispatches': { path: (i) => `/api/rigs/${i.rig}/dispatches`, byId: true },
  'POST /api/rigs/:rig_id/dispatches': {
    path: (i) => `/api/rigs/${i.rig}/dispatches`,
    body: () => ({ container_url: 'http://127.0.0.1:9/c' }),
    byId: true,
  },
  'GET /api/dispatches/:dispatch_id': { path: (i) => `/api/dispatches/${i.dispatch}`, byId: true },
  'POST /api/dispatches/:dispatch_id/stop': { path: (i) => `/api/dispatches/${i.dispatch}/stop`, byId: true },
  'GET /api/dispatches/:dispatch_id/events': { path: (i) => `/api/dispatches/${i.dispatch}/events`, byId: true },
  'POST /api/owners/:owner_id/tokens': { path: (i) => `/api/owners/${i.owner}/tokens`, body: () => ({ name: 'm' }), byId: true },
  'GET /api/owners/:owner_id/tokens': { path: (i) => `/api/owners/${i.owner}/tokens`, byId: true },
  'DELETE /api/owners/:owner_id/tokens/:token_id': { path: (i) => `/api/owners/${i.owner}/tokens/${i.token}`, byId: true },
  'POST /api/owners/:owner_id/sign-in-links': { path: (i) => `/api/owners/${i.owner}/sign-in-links`, byId: true, adminOnly: true },
  'GET /api/owners/:owner_id/sessions': { path: (i) => `/api/owners/${i.owner}/sessions`, byId: true },
  'DELETE /api/owners/:owner_id/sessions/:session_id': { path: (i) => `/api/owners/${i.owner}/sessions/${i.session}`, byId: true },
  'DELETE /api/owners/:owner_id/sessions': { path: (i) => `/api/owners/${i.owner}/sessions`, byId: true },
  // Dashboard pages.
  'GET /': { path: () => '/' },
  'GET /towns': { path: (i) => `/towns?id=${i.town}` },
  'GET /towns/:town_id': { path: (i) => `/towns/${i.town}`, byId: true },
  'GET /towns/:town_id/rigs/new': { path: (i) => `/towns/${i.town}/rigs/new`, byId: true },
  'GET /rigs/:rig_id': { path: (i) => `/rigs/${i.rig}`, byId: true },
  'GET /integrations': { path: (i) => `/integrations?owner_id=${i.owner}`, names: 'query' },
  'GET /owners': { path: (i) => `/owners?id=${i.owner}` },
  'GET /owners/:owner_id': { path: (i) => `/owners/${i.owner}`, byId: true },
  'GET /owners/:owner_id/tokens': { path: (i) => `/owners/${i.owner}/tokens`, byId: true },
  'GET /owners/:owner_id/sessions': { path: (i) => `/owners/${i.owner}/sessions`, byId: true },
  // Connect flows (the callbacks' state is checked in test/connect/connect-state-binding.test.ts).
  'GET /integrations/github/install': { path: (i) => `/integrations/github/install?owner_id=${i.owner}&app_type=standard`, names: 'query' },
  'GET /integrations/github/setup': { path: () => `/integrations/github/setup?installation_id=1&setup_action=install` },
  'GET /integrations/gitlab/connect': { path: (i) => `/integrations/gitlab/connect?owner_id=${i.owner}`, names: 'query' },
  'GET /integrations/gitlab/callback': { path: () => `/integrations/gitlab/callback?code=x` },
};

let world: DashboardWorld;
let h: Harness;
let a: Ids;
let b: Ids;
let tokenA: string;
let deletedToken: string;
let containerToken: string;

/** An owner with a town, a rig, a GitHub integration, a dispatch, an API token and a session. */
async function owner(account: string): Promise<Ids & { apiToken: string; containerToken: string }> {
  const ownerId = randomUUID();
  const town = (await h.call<{ id: string }>('POST', '/api/towns', { name: `town-${account}`, owner_id: ownerId })).body.id;
  const rig = (await h.call<{ id: string }>('POST', `/api/towns/${town}/rigs`, { name: 'r', git_url: 'https://git.example.com/a/b.git' }))
    .body.id;
  const { installationId } = world.gh.addInstallation({ appId: world.standard.appId, account: { login: account }, repositories: 1 });
  const integration = await h.call<{ id: string }>('POST', '/api/integrations', {
    provider: 'github',
    owner_id: ownerId,
    installation_id: installationId,
  });
  expect(integration.status).toBe(201);
  const dispatch = await h.call<{ dispatch_id: string; container_token: string }>('POST', `/api/rigs/${rig}/dispatches`, {
    container_url: 'http://127.0.0.1:9/c',
  });
  const token = await h.call<{ id: string; token: string }>('POST', `/api/owners/${ownerId}/tokens`, { name: 'matrix' });
  const spare = await h.call<{ id: string }>('POST', `/api/owners/${ownerId}/tokens`, { name: 'spare' });
  const link = await h.call<{ url: string }>('POST', `/api/owners/${ownerId}/sign-in-links`);
  expect((await raw(h, link.body.url, { auth: false })).status).toBe(303);
  const session = (await h.call<{ sessions: Array<{ id: string }> }>('GET', `/api/owners/${ownerId}/sessions`)).body.sessions[0].id;
  return {
    owner: ownerId,
    town,
    rig,
    integration: integration.body.id,
    dispatch: dispatch.body.dispatch_id,
    token: spare.body.id,
    session,
    apiToken: token.body.token,
    containerToken: dispatch.body.container_token,
  };
}

beforeAll(async () => {
  world = await dashboardWorld();
  h = await startDashboard(world, { worker: false });
  const [ownerA, ownerB] = [await owner('acme-a'), await owner('acme-b')];
  [a, b, tokenA, containerToken] = [ownerA, ownerB, ownerA.apiToken, ownerB.containerToken];
  deletedToken = (await h.call<{ id: string; token: string }>('POST', `/api/owners/${a.owner}/tokens`, { name: 'gone' })).body.token;
  const id = (await h.call<{ tokens: Array<{ id: string; name: string }> }>('GET', `/api/owners/${a.owner}/tokens`)).body.tokens.find(
    (t) => t.name === 'gone',
  )!.id;
  expect((await h.call('DELETE', `/api/owners/${a.owner}/tokens/${id}`)).status).toBe(204);
});
afterAll(async () => {
  await h?.close();
  await world?.close();
});

async function send(method: string, c: Case, ids: Ids, bearer: string) {
  const body = c.body?.(ids);
  const res = await raw(h, c.path(ids), {
    method,
    headers: { authorization: `Bearer ${bearer}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, text, location: res.headers.get('location') };
}

const isPage = (url: string) => !url.startsWith('/api/');
/** Anything but a refusal of the caller (a provider's 502 or a validation 400 still means the rule let it through). */
const expectAllowed = (res: { status: number; text: string }) =>
  expect([res.status, [401, 403, 404].includes(res.status) ? res.text.slice(0, 300) : 'allowed']).toEqual([res.status, 'allowed']);
const code = (text: string) => /"code":"([a-z_]+)"|<code>([a-z_]+)<\/code>/.exec(text)?.slice(1).find(Boolean);

it('lists every route the app serves: each is in the table or has no owner rule to check', () => {
  const served = h.api.app.routeList.map((r) => `${r.method} ${r.url}`);
  const unlisted = served.filter((key) => !TABLE[key] && key !== CONTAINER_ROUTE && !NO_ROUTE_CHECKS.test(key.split(' ')[1]));
  expect(unlisted).toEqual([]);
  expect(Object.keys(TABLE).filter((key) => !served.includes(key))).toEqual([]);
  // Every route of the table declares its access rule (the groups refuse to boot otherwise).
  for (const r of h.api.app.routeList.filter((r) => TABLE[`${r.method} ${r.url}`]))
    expect([r.url, r.access]).toEqual([r.url, expect.any(Object)]);
});

it('covers every route of the OpenAPI document', async () => {
  const doc = (await (await raw(h, '/docs/json')).json()) as { paths: Record<string, Record<string, unknown>> };
  const documented = Object.entries(doc.paths).flatMap(([p, ops]) =>
    Object.keys(ops).map((m) => `${m.toUpperCase()} ${p.replace(/\{([^}]+)\}/g, ':$1')}`),
  );
  const unchecked = documented.filter((key) => !TABLE[key] && key !== CONTAINER_ROUTE && !NO_ROUTE_CHECKS.test(key.split(' ')[1]));
  expect(unchecked).toEqual([]);
});

describe.each(Object.entries(TABLE))('%s', (key, c) => {
  const method = key.split(' ')[0];
  const url = key.split(' ')[1];

  if (c.byId) {
    it("answers owner B's ids to owner A with 404, as if they did not exist", async () => {
      const res = await send(method, c, b, tokenA);
      expect([res.status, code(res.text)]).toEqual([404, 'not_found']);
    });
  }

  if (c.names) {
    it('answers owner A naming owner B with 403 forbidden', async () => {
      const res = await send(method, c, b, tokenA);
      expect([res.status, code(res.text)]).toEqual([403, 'forbidden']);
      if (!isPage(url)) expect(res.text).toContain('"field":"owner_id"');
    });
  }

  it('refuses a container token and a deleted owner token (401; sign-in for pages)', async () => {
    for (const bearer of [containerToken, deletedToken]) {
      const res = await send(method, c, b, bearer);
      if (isPage(url) && method === 'GET') expect([res.status, res.location?.split('?')[0]]).toEqual([302, '/login']);
      else expect([res.status, code(res.text)]).toEqual([401, 'unauthorized']);
    }
  });

  it("lets owner A reach A's own rows, and admin reach B's", async () => {
    const own = await send(method, c, a, tokenA);
    if (c.adminOnly) expect([own.status, code(own.text)]).toEqual([403, 'forbidden']);
    else expectAllowed(own);
    expectAllowed(await send(method, c, b, h.core.config.adminApiToken));
  });
});

it("shows owner A only A's towns on the home page, and admin everyone's", async () => {
  const mine = await send('GET', TABLE['GET /'], a, tokenA);
  expect(mine.text).toContain(a.town);
  expect(mine.text).not.toContain(b.town);
  expect(mine.text).not.toContain(b.owner);
  // Admin's home page lists the 20 most recent towns of everyone: suites running beside this one create
  // towns too, so B's is made just before the page is read.
  const recent = await h.call<{ id: string }>('POST', '/api/towns', { name: 'b-recent', owner_id: b.owner });
  const admin = await send('GET', TABLE['GET /'], a, h.core.config.adminApiToken);
  expect(admin.text).toContain(recent.body.id);
  expect(admin.text).toContain(b.owner);
});

it("lists only A's integrations for A without an owner_id, and opens B's town by id only as a 404", async () => {
  const list = await raw(h, '/api/integrations', { headers: { authorization: `Bearer ${tokenA}` } });
  expect(((await list.json()) as { integrations: Array<{ id: string }> }).integrations.map((i) => i.id)).toEqual([a.integration]);
  const open = await send('GET', TABLE['GET /towns'], b, tokenA);
  expect([open.status, open.location]).toEqual([302, `/towns/${b.town}`]);
  expect((await raw(h, open.location!, { headers: { authorization: `Bearer ${tokenA}` } })).status).toBe(404);
});

it("refuses a rig of A's connected to B's integration as not found (the body's id leaks nothing)", async () => {
  for (const [m, path] of [
    ['POST', `/api/towns/${a.town}/rigs`],
    ['PATCH', `/api/rigs/${a.rig}`],
  ]) {
    const res = await raw(h, path, {
      method: m,
      headers: { authorization: `Bearer ${tokenA}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'x', platform_integration_id: b.integration, repository_id: 1 }),
    });
    expect([res.status, await res.json()]).toEqual([
      404,
      { error: { code: 'not_found', message: 'integration not found', field: 'platform_integration_id' } },
    ]);
  }
});

it('refuses an owner API token on the container pull route', async () => {
  const res = await raw(h, `/api/internal/rigs/${a.rig}/git-token`, { method: 'POST', headers: { authorization: `Bearer ${tokenA}` } });
  expect(res.status).toBe(401);
});
