// Owner API tokens over two API instances on one database: shown once with the rco_ prefix,
// listed without the secret and with last_used_at, and dead everywhere as soon as deleted.
import { randomUUID } from 'node:crypto';
import { sha256Hex } from '../../lib/secrets';
import { expectError, ISO } from '../helpers/api';
import { startHarness, type Harness } from '../helpers/harness';

let a: Harness;
let b: Harness;

beforeAll(async () => {
  [a, b] = await Promise.all([startHarness({ worker: false }), startHarness({ worker: false })]);
});
afterAll(async () => {
  await Promise.all([a?.close(), b?.close()]);
});

const as = (token: string) => ({ authorization: `Bearer ${token}` });

it('creates a token once-shown (rco_), lists it without the secret, and deletes it on every instance at once', async () => {
  const owner = randomUUID();
  const created = await a.call<{ id: string; name: string; token: string; owner_id: string; created_at: string }>(
    'POST',
    `/api/owners/${owner}/tokens`,
    { name: 'ci' },
  );
  expect(created.status).toBe(201);
  expect(created.body).toEqual({
    id: expect.any(String),
    name: 'ci',
    token: expect.stringMatching(/^rco_[\w-]{43}$/),
    owner_id: owner,
    created_at: expect.stringMatching(ISO),
  });
  const { token, id } = created.body;
  // Stored as its SHA-256, never as itself.
  const row = await a.core.db.ownerApiToken.findUniqueOrThrow({ where: { id } });
  expect(row.tokenHash).toBe(sha256Hex(token));
  expect(JSON.stringify(row)).not.toContain(token);

  const listed = await a.call<{ tokens: Array<Record<string, unknown>> }>('GET', `/api/owners/${owner}/tokens`);
  expect(listed.body.tokens).toEqual([{ id, name: 'ci', created_at: created.body.created_at, last_used_at: null }]);
  expect(JSON.stringify(listed.body)).not.toContain(token);

  // The token works on both instances, as its owner, and its use is noted.
  const town = await b.call<{ id: string; owner_id: string }>('POST', '/api/towns', { name: 'by-token' }, as(token));
  expect([town.status, town.body.owner_id]).toEqual([201, owner]);
  expect((await a.call('GET', `/api/towns/${town.body.id}`, undefined, as(token))).status).toBe(200);
  const used = await b.call<{ tokens: Array<{ last_used_at: string | null }> }>('GET', `/api/owners/${owner}/tokens`, undefined, as(token));
  expect(used.body.tokens[0].last_used_at).toMatch(ISO);

  // Deleted on one instance: the very next request on the other answers 401.
  expect((await a.call('DELETE', `/api/owners/${owner}/tokens/${id}`, undefined, as(token))).status).toBe(204);
  expectError(await b.call('GET', `/api/towns/${town.body.id}`, undefined, as(token)), 401, 'unauthorized');
  expectError(await a.call('GET', `/api/towns/${town.body.id}`, undefined, as(token)), 401, 'unauthorized');
  expect((await a.call<{ tokens: unknown[] }>('GET', `/api/owners/${owner}/tokens`)).body.tokens).toEqual([]);
  expectError(await a.call('DELETE', `/api/owners/${owner}/tokens/${id}`), 404, 'not_found', 'token_id');
});

it('writes last_used_at at most once a minute per token', async () => {
  const owner = randomUUID();
  const { token, id } = (await a.call<{ token: string; id: string }>('POST', `/api/owners/${owner}/tokens`, { name: 'busy' })).body;
  await a.call('GET', `/api/integrations`, undefined, as(token));
  const first = (await a.core.db.ownerApiToken.findUniqueOrThrow({ where: { id } })).lastUsedAt!;
  for (let i = 0; i < 3; i++) await b.call('GET', `/api/integrations`, undefined, as(token));
  expect((await a.core.db.ownerApiToken.findUniqueOrThrow({ where: { id } })).lastUsedAt).toEqual(first);
  await a.core.db.ownerApiToken.update({ where: { id }, data: { lastUsedAt: new Date(Date.now() - 61_000) } });
  await b.call('GET', `/api/integrations`, undefined, as(token));
  expect((await a.core.db.ownerApiToken.findUniqueOrThrow({ where: { id } })).lastUsedAt!.getTime()).toBeGreaterThan(first.getTime());
});

it('refuses a bad name with the field, and lets owners manage only their own tokens', async () => {
  const [owner, other] = [randomUUID(), randomUUID()];
  const { token } = (await a.call<{ token: string }>('POST', `/api/owners/${owner}/tokens`, { name: 'mine' })).body;
  expectError(await a.call('POST', `/api/owners/${owner}/tokens`, { name: '  ' }), 400, 'invalid_request', 'name');
  expectError(await a.call('POST', `/api/owners/${owner}/tokens`, { name: 'x'.repeat(101) }), 400, 'invalid_request', 'name');
  const theirs = (await a.call<{ id: string }>('POST', `/api/owners/${other}/tokens`, { name: 'theirs' })).body;
  expectError(await a.call('GET', `/api/owners/${other}/tokens`, undefined, as(token)), 404, 'not_found', 'owner_id');
  expectError(await a.call('POST', `/api/owners/${other}/tokens`, { name: 'x' }, as(token)), 404, 'not_found', 'owner_id');
  expectError(await a.call('DELETE', `/api/owners/${other}/tokens/${theirs.id}`, undefined, as(token)), 404, 'not_found', 'owner_id');
  // Another owner's token id under one's own owner id is not found either.
  expectError(await a.call('DELETE', `/api/owners/${owner}/tokens/${theirs.id}`, undefined, as(token)), 404, 'not_found', 'token_id');
  expect((await a.call('POST', `/api/owners/${owner}/tokens`, { name: 'second' }, as(token))).status).toBe(201);
});
