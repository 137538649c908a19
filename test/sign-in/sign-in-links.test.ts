// One-time sign-in links (how a host product embeds the dashboard): valid at most 60 s, single use
// even under a race, admin only; and the sign-in rate limit per source address.
import { randomUUID } from 'node:crypto';
import { expectError, ISO } from '../helpers/api';
import { startHarness, type Harness } from '../helpers/harness';
import { raw } from '../dashboard/dashboard-world';

let h: Harness;

beforeAll(async () => {
  h = await startHarness({ worker: false });
});
afterAll(async () => h?.close());

async function link(owner: string): Promise<{ url: string; expires_at: string }> {
  const res = await h.call<{ url: string; expires_at: string }>('POST', `/api/owners/${owner}/sign-in-links`);
  expect(res.status).toBe(201);
  return res.body;
}

const open = (url: string) => raw(h, url.replace(h.core.config.publicUrl, h.url), { auth: false });
const cookieOf = (res: Response) => res.headers.get('set-cookie')?.split(';')[0];

it('signs a browser in as the owner once, within 60 seconds, and goes to /', async () => {
  const owner = randomUUID();
  const { url, expires_at } = await link(owner);
  const received = Date.now();
  expect(url).toMatch(new RegExp(`^${h.core.config.publicUrl}/login/link/[\\w-]{43}$`));
  expect(expires_at).toMatch(ISO);
  expect(new Date(expires_at).getTime() - received).toBeLessThanOrEqual(60_000);

  const first = await open(url);
  expect([first.status, first.headers.get('location')]).toEqual([303, '/']);
  const cookie = cookieOf(first)!;
  const sessions = await h.call<{ sessions: Array<{ id: string }> }>('GET', `/api/owners/${owner}/sessions`, undefined, { cookie });
  expect(sessions.status).toBe(200);
  expect(sessions.body.sessions).toHaveLength(1);

  const second = await open(url);
  expect(second.status).toBe(410);
  expect(second.headers.get('set-cookie')).toBeNull();
  expect(await second.text()).toContain('<code>link_invalid</code>');
});

it('signs nobody in with a late link, an unknown one, or either of two racing uses but one', async () => {
  const owner = randomUUID();
  const late = await link(owner);
  await h.core.db.signInLink.updateMany({ where: { ownerId: owner }, data: { expiresAt: new Date(Date.now() - 1) } });
  const res = await open(late.url);
  expect([res.status, res.headers.get('set-cookie')]).toEqual([410, null]);
  expect((await open(`${h.url}/login/link/${'A'.repeat(43)}`)).status).toBe(410);

  const raced = await link(owner);
  const results = await Promise.all(Array.from({ length: 5 }, () => open(raced.url)));
  expect(results.map((r) => r.status).sort()).toEqual([303, 410, 410, 410, 410]);
  expect(await h.core.db.session.count({ where: { ownerId: owner } })).toBe(1);
});

it('is for admin only: an owner may not make links, not even for themself', async () => {
  const owner = randomUUID();
  const { token } = (await h.call<{ token: string }>('POST', `/api/owners/${owner}/tokens`, { name: 't' })).body;
  expectError(
    await h.call('POST', `/api/owners/${owner}/sign-in-links`, undefined, { authorization: `Bearer ${token}` }),
    403,
    'forbidden',
  );
  expectError(
    await h.call('POST', `/api/owners/${randomUUID()}/sign-in-links`, undefined, { authorization: `Bearer ${token}` }),
    404,
    'not_found',
    'owner_id',
  );
});

it('ends the browser’s previous session when it signs in again', async () => {
  const [first, second] = [randomUUID(), randomUUID()];
  const cookie = cookieOf(await open((await link(first)).url))!;
  const next = await raw(h, (await link(second)).url.replace(h.core.config.publicUrl, h.url), { auth: false, headers: { cookie } });
  expect(next.status).toBe(303);
  expect(await h.core.db.session.count({ where: { ownerId: first } })).toBe(0);
});

describe('sign-in rate limit', () => {
  let limited: Harness;
  beforeAll(async () => {
    limited = await startHarness({ worker: false, env: { LOGIN_RATE_LIMIT_PER_MINUTE: '12' } });
  });
  afterAll(async () => limited?.close());

  it('answers 429 with Retry-After once an address used its attempts, on every sign-in route', async () => {
    const form = { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'token=wrong', auth: false };
    const statuses: number[] = [];
    for (let i = 0; i < 10; i++) statuses.push((await raw(limited, '/login', form)).status);
    expect(statuses).toEqual(Array(10).fill(401));
    const limitedRes = await raw(limited, '/login', form);
    expect(limitedRes.status).toBe(429);
    expect(Number(limitedRes.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(await limitedRes.text()).toContain('<code>rate_limited</code>');
    // The admin token does not get around it, and neither does another sign-in route.
    const admin = await raw(limited, '/login', { ...form, body: `token=${limited.core.config.adminApiToken}` });
    expect([admin.status, admin.headers.get('set-cookie')]).toEqual([429, null]);
    expect((await raw(limited, `/login/link/${'A'.repeat(43)}`, { auth: false })).status).toBe(429);
  });
});
