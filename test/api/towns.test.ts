// Towns through the real HTTP listener: create, read with the owner's integrations, and the
// write-only git-auth tokens (reads show host, username and fingerprint, never the token).
import { randomUUID } from 'node:crypto';
import { newOwner, startHarness, type Harness } from '../helpers/harness';
import { githubWorld, type GithubWorld } from '../helpers/scenario';
import { expectError, expectInvalid, expectNoSecrets, ISO, recordResponses } from '../helpers/api';

let h: Harness;
let world: GithubWorld;
let responses: string[];
const secrets: string[] = [];

beforeAll(async () => {
  world = await githubWorld();
  h = await startHarness({ env: world.env, worker: false });
  responses = recordResponses(h);
});
afterAll(async () => {
  await h?.close();
  await world?.gh.close();
});

interface TownDetail {
  id: string;
  name: string;
  owner_id: string;
  created_at: string;
  updated_at: string;
  integrations: Array<{ id: string; status: string; provider: string }>;
  connect_integration_url: string | null;
  git_auth: Array<{ host: string; username: string | null; fingerprint: string; updated_at: string }>;
  rigs: unknown[];
}

async function newTown(owner = newOwner()) {
  const res = await h.call<{ id: string }>('POST', '/api/towns', { name: 'Gas Town', owner_id: owner });
  expect(res.status).toBe(201);
  return { id: res.body.id, owner };
}

const detail = async (id: string) => (await h.call<TownDetail>('GET', `/api/towns/${id}`)).body;

describe('POST /api/towns and GET /api/towns/:id', () => {
  it('creates a town and reads it back with a connect link while its owner has no integration', async () => {
    const owner = newOwner();
    const created = await h.call('POST', '/api/towns', { name: '  Gas Town  ', owner_id: owner });
    expect(created.status).toBe(201);
    expect(created.body).toEqual({
      id: expect.any(String),
      name: 'Gas Town',
      owner_id: owner,
      created_at: expect.stringMatching(ISO),
      updated_at: expect.stringMatching(ISO),
    });

    const town = await h.call<TownDetail>('GET', `/api/towns/${(created.body as { id: string }).id}`);
    expect(town.status).toBe(200);
    expect(town.body).toMatchObject({ ...(created.body as object), integrations: [], git_auth: [], rigs: [] });
    expect(new URL(town.body.connect_integration_url!, 'http://x').pathname).toBe('/integrations');
  });

  it("lists the owner's integrations with their status and drops the connect link once there is one", async () => {
    const { id, owner } = await newTown();
    const inst = world.gh.addInstallation({ appId: world.standard.appId, account: { login: 'acme-towns' }, repositories: 1 });
    const reg = await h.call<{ id: string }>('POST', '/api/integrations', {
      provider: 'github',
      owner_id: owner,
      installation_id: inst.installationId,
      app_type: 'standard',
    });
    expect(reg.status).toBe(201);

    const town = await detail(id);
    expect(town.integrations).toEqual([
      expect.objectContaining({
        id: reg.body.id,
        provider: 'github',
        status: 'active',
        account: 'acme-towns',
        installation_id: inst.installationId,
      }),
    ]);
    expect(town.connect_integration_url).toBeNull();

    // Another town of another owner still has none.
    expect((await detail((await newTown()).id)).connect_integration_url).not.toBeNull();
  });

  it.each([
    [{ owner_id: randomUUID() }, 'name'],
    [{ name: '   ', owner_id: randomUUID() }, 'name'],
    [{ name: 'x'.repeat(201), owner_id: randomUUID() }, 'name'],
    [{ name: 'ok' }, 'owner_id'],
    [{ name: 'ok', owner_id: 'not-a-uuid' }, 'owner_id'],
    [{ name: 42, owner_id: randomUUID() }, 'name'],
  ])('refuses %j with 400 naming %s and writes nothing', async (body, field) => {
    // Towns that carry this body's name or owner: other test files create towns at the same time.
    const b = body as { name?: unknown; owner_id?: unknown };
    const mine = [
      ...(typeof b.name === 'string' ? [{ name: b.name.trim() }] : []),
      ...(typeof b.owner_id === 'string' && /^[0-9a-f-]{36}$/.test(b.owner_id) ? [{ ownerId: b.owner_id }] : []),
    ];
    const count = () => h.core.db.town.count({ where: { OR: mine } });
    expect(mine.length).toBeGreaterThan(0);
    const before = await count();
    expectInvalid(await h.call('POST', '/api/towns', body), field, new RegExp(field));
    expect(await count()).toBe(before);
  });

  it('answers 404 for an unknown town and 400 for a malformed id', async () => {
    expectError(await h.call('GET', `/api/towns/${randomUUID()}`), 404, 'not_found', 'town_id');
    expectInvalid(await h.call('GET', '/api/towns/not-a-uuid'), 'town_id');
  });
});

describe('PUT /api/towns/:id/git-auth', () => {
  it('stores tokens write-only: reads show host, username and fingerprint, never the token', async () => {
    const { id } = await newTown();
    const a = `ghp_${randomUUID().replace(/-/g, '')}`;
    const b = `glpat-${randomUUID()}`;
    secrets.push(a, b);
    const put = await h.call('PUT', `/api/towns/${id}/git-auth`, {
      tokens: [
        { host: 'GitHub.com', token: a },
        { host: 'git.example.com:8443', token: b, username: 'bot' },
      ],
    });
    expect(put.status).toBe(204);
    expect(put.body).toBeNull();

    const town = await detail(id);
    expect(town.git_auth).toEqual([
      {
        host: 'git.example.com:8443',
        username: 'bot',
        fingerprint: expect.stringMatching(/^sha256:[0-9a-f]{16}$/),
        updated_at: expect.stringMatching(ISO),
      },
      {
        host: 'github.com',
        username: null,
        fingerprint: expect.stringMatching(/^sha256:[0-9a-f]{16}$/),
        updated_at: expect.stringMatching(ISO),
      },
    ]);
    expect(town.git_auth[0].fingerprint).not.toBe(town.git_auth[1].fingerprint);
    // At rest the token is encrypted.
    const rows = await h.core.db.townGitAuth.findMany({ where: { townId: id } });
    expect(rows.map((r) => r.tokenEnc).join()).not.toContain(a);
  });

  it('replaces the whole set (PUT semantics); an empty list clears it', async () => {
    const { id } = await newTown();
    const one = `tok-one-${randomUUID()}`;
    const two = `tok-two-${randomUUID()}`;
    secrets.push(one, two);
    expect(
      (
        await h.call('PUT', `/api/towns/${id}/git-auth`, {
          tokens: [
            { host: 'a.example.com', token: one },
            { host: 'b.example.com', token: one },
          ],
        })
      ).status,
    ).toBe(204);
    const firstPrint = (await detail(id)).git_auth[0].fingerprint;
    expect((await h.call('PUT', `/api/towns/${id}/git-auth`, { tokens: [{ host: 'a.example.com', token: two }] })).status).toBe(204);
    const after = (await detail(id)).git_auth;
    expect(after.map((g) => g.host)).toEqual(['a.example.com']);
    expect(after[0].fingerprint).not.toBe(firstPrint);
    expect((await h.call('PUT', `/api/towns/${id}/git-auth`, { tokens: [] })).status).toBe(204);
    expect((await detail(id)).git_auth).toEqual([]);
  });

  it('concurrent PUTs each replace the whole set: every one answers 204 and one of them is what remains', async () => {
    const { id } = await newTown();
    const bodies = Array.from({ length: 8 }, (_, i) => {
      const token = `tok-race-${i}-${randomUUID()}`;
      secrets.push(token);
      // The same host in every body (the inserts would collide) and a host of its own (they would mix).
      return {
        tokens: [
          { host: 'github.com', token },
          { host: `h${i}.example.com`, token },
        ],
      };
    });
    const answers = await Promise.all(bodies.map((b) => h.call('PUT', `/api/towns/${id}/git-auth`, b)));
    expect(answers.map((a) => a.status)).toEqual(bodies.map(() => 204));
    const left = (await detail(id)).git_auth.map((g) => g.host).sort();
    expect(bodies.map((b) => b.tokens.map((t) => t.host).sort())).toContainEqual(left);
  });

  it('refuses a host listed twice (after normalising case) and keeps the previous set', async () => {
    const { id } = await newTown();
    const keep = `keep-${randomUUID()}`;
    secrets.push(keep);
    expect((await h.call('PUT', `/api/towns/${id}/git-auth`, { tokens: [{ host: 'github.com', token: keep }] })).status).toBe(204);
    const before = await detail(id);
    const res = await h.call('PUT', `/api/towns/${id}/git-auth`, {
      tokens: [
        { host: 'gitlab.com', token: 'x1' },
        { host: 'github.com', token: 'x2' },
        { host: 'GITHUB.com', token: 'x3' },
      ],
    });
    expectInvalid(res, 'tokens.2.host', /github\.com.*twice/);
    expect((await detail(id)).git_auth).toEqual(before.git_auth);
  });

  it.each([
    [{}, 'tokens'],
    [{ tokens: 'x' }, 'tokens'],
    [{ tokens: [{ token: 't' }] }, 'tokens.0.host'],
    [{ tokens: [{ host: 'https://github.com', token: 't' }] }, 'tokens.0.host'],
    [{ tokens: [{ host: 'user@github.com', token: 't' }] }, 'tokens.0.host'],
    [{ tokens: [{ host: 'github.com/acme', token: 't' }] }, 'tokens.0.host'],
    [{ tokens: [{ host: 'github.com', token: 't' }, { host: 'gitlab.com' }] }, 'tokens.1.token'],
    [{ tokens: [{ host: 'github.com', token: '' }] }, 'tokens.0.token'],
    [{ tokens: [{ host: 'github.com', token: 'has space' }] }, 'tokens.0.token'],
    [{ tokens: [{ host: 'github.com', token: 't', username: '  ' }] }, 'tokens.0.username'],
  ])('refuses %j with 400 naming %s', async (body, field) => {
    const { id } = await newTown();
    expectInvalid(await h.call('PUT', `/api/towns/${id}/git-auth`, body), field);
    expect(await h.core.db.townGitAuth.count({ where: { townId: id } })).toBe(0);
  });

  it('answers 404 for an unknown town', async () => {
    expectError(await h.call('PUT', `/api/towns/${randomUUID()}/git-auth`, { tokens: [] }), 404, 'not_found', 'town_id');
  });
});

describe('secrets', () => {
  it('shows no token in any response of this file (runs last)', () => {
    expect(expectNoSecrets(responses, secrets)).toBeGreaterThan(20);
  });
});
