// Sign-in, the page guard and CSRF, over HTTP against the real service (no browser).
import { randomUUID } from 'node:crypto';
import { sessionCookie } from '../../api/auth/session-cookie';
import { ADMIN, type Harness } from '../helpers/harness';
import { dashboardWorld, raw, startDashboard, type DashboardWorld } from './dashboard-world';

let world: DashboardWorld;
let h: Harness;

beforeAll(async () => {
  world = await dashboardWorld();
  h = await startDashboard(world, { worker: false });
});

afterAll(async () => {
  await h?.close();
  await world?.close();
});

const form = (fields: Record<string, string>) => ({
  method: 'POST',
  headers: { 'content-type': 'application/x-www-form-urlencoded' },
  body: new URLSearchParams(fields).toString(),
  auth: false,
});

async function signIn(): Promise<string> {
  const res = await raw(h, '/login', form({ token: ADMIN, next: '/' }));
  return res.headers.get('set-cookie')!.split(';')[0];
}

it('sends anonymous browsers to the login page and back where they were going', async () => {
  const townPath = `/towns/${randomUUID()}`;
  const res = await raw(h, townPath, { auth: false });
  expect(res.status).toBe(302);
  expect(res.headers.get('location')).toBe(`/login?next=${encodeURIComponent(townPath)}`);
  const login = await raw(h, res.headers.get('location')!, { auth: false });
  expect(login.status).toBe(200);
  const body = await login.text();
  expect(body).toContain('<label for="token">Admin token</label>');
  expect(body).toContain(`value="${townPath}"`);
  expect(login.headers.get('content-security-policy')).toContain("script-src 'self'");
  expect(login.headers.get('x-frame-options')).toBe('DENY');
});

it('signs in with the admin token: HttpOnly SameSite=Lax cookie and a redirect to next', async () => {
  const res = await raw(h, '/login', form({ token: ADMIN, next: '/integrations?owner_id=x' }));
  expect(res.status).toBe(303);
  expect(res.headers.get('location')).toBe('/integrations?owner_id=x');
  const cookie = res.headers.get('set-cookie')!;
  expect(cookie).toMatch(/^rc_session=[\w-]{43}; Path=\/; HttpOnly; SameSite=Lax; Max-Age=43200$/);
  const page = await raw(h, '/', { headers: { cookie: cookie.split(';')[0] } });
  expect(page.status).toBe(200);
  expect(await page.text()).toContain('<h1>Towns</h1>');
});

it('refuses a wrong token with the login page again (401) and sets no cookie', async () => {
  const res = await raw(h, '/login', form({ token: 'not-the-admin-token', next: '/' }));
  expect(res.status).toBe(401);
  expect(res.headers.get('set-cookie')).toBeNull();
  expect(await res.text()).toContain('That is not the admin token.');
});

it.each([
  ['//evil.example/x', '/'],
  ['https://evil.example/x', '/'],
  ['/\\evil.example', '/'],
  ['javascript:alert(1)', '/'],
  ['/.//evil.example/', '/'],
  ['/rigs/abc?x=1', '/rigs/abc?x=1'],
])('only redirects to paths on this site after sign-in (next=%s → %s)', async (next, expected) => {
  const res = await raw(h, '/login', form({ token: ADMIN, next }));
  expect(res.headers.get('location')).toBe(expected);
});

it('lets the cookie call the JSON API, but refuses cookie writes from another site (CSRF)', async () => {
  const cookie = await signIn();
  const owner = randomUUID();
  const list = await raw(h, `/api/integrations?owner_id=${owner}`, { headers: { cookie } });
  expect(list.status).toBe(200);

  const body = JSON.stringify({ name: 'csrf-town', owner_id: owner });
  const json = { 'content-type': 'application/json', cookie };
  const crossSite = await raw(h, '/api/towns', { method: 'POST', body, headers: { ...json, origin: 'https://evil.example' } });
  expect(crossSite.status).toBe(403);
  expect((await crossSite.json()).error.code).toBe('csrf_rejected');
  const noOrigin = await raw(h, '/api/towns', { method: 'POST', body, headers: json });
  expect(noOrigin.status).toBe(403);

  const sameSite = await raw(h, '/api/towns', { method: 'POST', body, headers: { ...json, origin: world.publicUrl } });
  expect(sameSite.status).toBe(201);
});

it('signs out only from our own pages, clearing the cookie', async () => {
  const cookie = await signIn();
  const crossSite = await raw(h, '/logout', { method: 'POST', headers: { cookie, origin: 'https://evil.example' } });
  expect(crossSite.status).toBe(403);
  expect(crossSite.headers.get('set-cookie')).toBeNull();

  const res = await raw(h, '/logout', { method: 'POST', headers: { cookie, origin: world.publicUrl } });
  expect(res.status).toBe(303);
  expect(res.headers.get('location')).toBe('/login');
  expect(res.headers.get('set-cookie')).toMatch(/^rc_session=; .*Max-Age=0/);
  // Ended on the server too: the old cookie value signs nobody in any more.
  expect((await raw(h, '/', { headers: { cookie } })).status).toBe(302);
  expect((await raw(h, `/api/integrations?owner_id=${randomUUID()}`, { headers: { cookie } })).status).toBe(401);
});

it('names the cookie __Host-rc_session (Secure, Path=/, no Domain) when PUBLIC_URL is https', () => {
  const https = { ...h.core.config, publicUrl: 'https://rc.example.com' };
  expect(sessionCookie(https, 'v')).toBe('__Host-rc_session=v; Path=/; HttpOnly; SameSite=Lax; Max-Age=43200; Secure');
  expect(sessionCookie(h.core.config, 'v')).toBe('rc_session=v; Path=/; HttpOnly; SameSite=Lax; Max-Age=43200');
});

it('accepts the admin bearer on pages, and shows a missing record as a 404 page', async () => {
  const res = await raw(h, `/towns/${randomUUID()}`);
  expect(res.status).toBe(404);
  expect(res.headers.get('content-type')).toMatch(/^text\/html/);
  expect(await res.text()).toContain('<code>not_found</code>');
  expect((await raw(h, `/towns/${randomUUID()}`, { headers: { authorization: 'Bearer wrong-token-0123456789' } })).status).toBe(302);
});

it('escapes what it renders (a town name cannot become markup)', async () => {
  const owner = randomUUID();
  const town = await h.call<{ id: string }>('POST', '/api/towns', { name: '<img src=x onerror=alert(1)>"', owner_id: owner });
  const body = await (await raw(h, `/towns/${town.body.id}`)).text();
  expect(body).not.toContain('<img src=x');
  expect(body).toContain('&lt;img src=x onerror=alert(1)&gt;&quot;');
});

it('documents the connect flows and the webhook in the OpenAPI document, not the HTML pages', async () => {
  const doc = (await (await raw(h, '/docs/json')).json()) as { paths: Record<string, unknown> };
  expect(Object.keys(doc.paths)).toEqual(
    expect.arrayContaining([
      '/integrations/github/install',
      '/integrations/github/setup',
      '/integrations/gitlab/connect',
      '/integrations/gitlab/callback',
      '/webhooks/github',
    ]),
  );
  expect(Object.keys(doc.paths)).not.toContain('/login');
  expect(Object.keys(doc.paths)).not.toContain('/towns/{town_id}');
});
