// The lease store against the real Postgres: the one-statement write that the refresh loop takes,
// and the locked path it falls back on when the lease changed after it was read.
import { randomBytes, randomUUID } from 'node:crypto';
import { createDb, type Db } from '../../lib/db';
import { createLeaseStore, DispatchEndedError, REVOKE_AFTER_EXPIRY_MS, type Credential, type LeaseStore } from '../../lib/lease-store';
import { createSecretBox, fingerprint, type SecretBox } from '../../lib/secrets';
import { containerTokenContext } from '../../lib/secret-contexts';
import { testDatabaseUrl } from '../helpers/test-env';

// Only what the store needs (no Temporal): the real database and a secret box.
let core: { db: Db; secrets: SecretBox; leases: LeaseStore };

beforeAll(() => {
  const db = createDb(testDatabaseUrl(), { max: 3 });
  const secrets = createSecretBox([randomBytes(32)]);
  core = { db, secrets, leases: createLeaseStore({ db, secrets }) };
});
afterAll(async () => {
  await core?.db.$disconnect();
});

async function newDispatch(): Promise<string> {
  const town = await core.db.town.create({ data: { name: 'leases', owner: { create: {} } } });
  const rig = await core.db.rig.create({
    data: { townId: town.id, name: `r-${randomUUID()}`, gitUrl: 'https://git.example.com/a/b.git', defaultBranch: 'main' },
  });
  const id = randomUUID();
  const containerToken = randomBytes(16).toString('hex');
  await core.db.agentDispatch.create({
    data: {
      id,
      rigId: rig.id,
      containerUrl: 'http://127.0.0.1:9/c',
      containerTokenHash: fingerprint(containerToken),
      containerTokenEnc: core.secrets.encrypt(containerToken, containerTokenContext(id)),
      workflowId: `git-token-${id}`,
    },
  });
  return id;
}

const github = (integrationId: string | null = randomUUID()): Credential => ({
  token: `ghs_${randomBytes(24).toString('hex')}`,
  revocable: true,
  expiresAt: new Date(Date.now() + 3600_000),
  username: 'x-access-token',
  source: 'integration',
  scope: 'repository',
  scopeReason: null,
  integrationId,
});

async function minted(dispatchId: string): Promise<number[]> {
  const events = await core.db.tokenEvent.findMany({ where: { dispatchId, kind: 'minted' }, orderBy: { generation: 'asc' } });
  return events.map((e) => e.generation);
}

/** A dispatch whose lease is at generation 2, the token of generation 1 kept as the replaced one. */
async function twoGenerations() {
  const id = await newDispatch();
  const integration = randomUUID();
  const first = github(integration);
  const second = github(integration);
  await core.leases.write(id, first, 'run:1');
  await core.leases.write(id, second, 'run:2');
  return { id, first, second };
}

it('writes generation after generation from what it read, keeping the replaced token for the stop', async () => {
  const id = await newDispatch();
  const integration = randomUUID();
  const first = github(integration);
  const a = await core.leases.write(id, first, 'run:1', (await core.leases.read(id))!.seen);
  expect(a).toMatchObject({
    meta: { generation: 1, fingerprint: fingerprint(first.token), reused: false },
    duplicate: false,
    revokeNow: [],
  });

  const second = github(integration);
  const b = await core.leases.write(id, second, 'run:2', (await core.leases.read(id))!.seen);
  expect(b).toMatchObject({ meta: { generation: 2 }, duplicate: false, revokeNow: [] });

  const lease = await core.leases.read(id);
  expect(lease).toMatchObject({ generation: 2, token: second.token, mintKey: 'run:2', status: 'active' });
  expect((await core.leases.revocableTokens(id)).map((t) => [t.which, t.token])).toEqual([
    ['replaced', first.token],
    ['current', second.token],
  ]);
  expect(await minted(id)).toEqual([1, 2]);
});

it('falls back to the locked path when the lease changed after it was read, and never loses a generation', async () => {
  const id = await newDispatch();
  const integration = randomUUID();
  await core.leases.write(id, github(integration), 'run:1');
  const stale = (await core.leases.read(id))!.seen; // generation 1
  await core.leases.write(id, github(integration), 'run:2', stale); // generation 2
  const third = github(integration);
  const c = await core.leases.write(id, third, 'run:3', stale); // read at 1, stored at 2: decided again under the lock
  expect(c.meta.generation).toBe(3);
  // Generation 1 was replaced twice since: it is revoked now, generation 2 is kept for the stop.
  expect(c.revokeNow).toHaveLength(1);
  expect((await core.leases.read(id))!.token).toBe(third.token);
  expect(await minted(id)).toEqual([1, 2, 3]);
});

it('answers a second attempt of the same mint with the lease the first stored (its own token is surplus)', async () => {
  const id = await newDispatch();
  const seen = (await core.leases.read(id))!.seen;
  const winner = github();
  await core.leases.write(id, winner, 'run:7', seen);
  const late = await core.leases.write(id, github(), 'run:7', seen);
  expect(late).toMatchObject({ duplicate: true, meta: { generation: 1, fingerprint: fingerprint(winner.token) } });
  expect((await core.leases.read(id))!.token).toBe(winner.token);
  expect(await minted(id)).toEqual([1]);
});

it('reuses an unchanged credential without a new generation', async () => {
  const id = await newDispatch();
  const shared: Credential = { ...github(), revocable: false };
  await core.leases.write(id, shared, 'run:1');
  await core.leases.recordFailure(id, 'degraded', 'provider_unavailable', 'blip');
  const again = await core.leases.write(id, shared, 'run:2', (await core.leases.read(id))!.seen);
  expect(again).toMatchObject({ meta: { generation: 1, reused: true }, duplicate: false });
  const d = await core.db.agentDispatch.findUniqueOrThrow({ where: { id } });
  expect([d.status, d.lastErrorCode, d.generation]).toEqual(['active', null, 1]);
  expect(await minted(id)).toEqual([1]);
});

it('refuses to write for a dispatch that a close ended after it was read', async () => {
  const id = await newDispatch();
  const held = github();
  await core.leases.write(id, held, 'run:1');
  const seen = (await core.leases.read(id))!.seen;
  // A mint still under way lands while the close revokes: it is refused, so no token escapes the revocation.
  await core.leases.close(id, { status: 'stopped', reason: 'test' }, async () => {
    await expect(core.leases.write(id, github(), 'run:2', seen)).rejects.toBeInstanceOf(DispatchEndedError); // a new token
    await expect(core.leases.write(id, held, 'run:3', seen)).rejects.toBeInstanceOf(DispatchEndedError); // the same one
    expect((await core.leases.read(id))!.generation).toBe(1);
  });
  expect(await minted(id)).toEqual([1]);
});

it('says whether the dispatch holds a token: the current one and the one it replaced, none once closed', async () => {
  const { id, first, second } = await twoGenerations();
  const third = github();
  expect(await Promise.all([first, second, third].map((c) => core.leases.holds(id, c.token)))).toEqual([true, true, false]);
  expect(await core.leases.holds(await newDispatch(), first.token)).toBe(false); // a dispatch without a lease
  await core.leases.close(id, { status: 'stopped', reason: 'stopped by test' }, async () => undefined);
  expect(await Promise.all([first, second].map((c) => core.leases.holds(id, c.token)))).toEqual([false, false]);
});

it('closes in order: ended before revocation, tokens forgotten and status final only after it', async () => {
  const { id, first, second } = await twoGenerations();
  const during: unknown[] = [];
  await core.leases.close(id, { status: 'container_unreachable', reason: 'pushes failed' }, async () => {
    const lease = (await core.leases.read(id))!;
    const tokens = await core.leases.revocableTokens(id);
    during.push(
      lease.ended,
      lease.status,
      tokens.map((t) => [t.which, t.token]),
    );
  });
  // While revoking: ended (pulls answer 410, mints refused), the tokens still readable, the status not yet final.
  expect(during).toEqual([
    true,
    'active',
    [
      ['replaced', first.token],
      ['current', second.token],
    ],
  ]);
  const after = (await core.leases.read(id))!;
  expect([after.ended, after.status, after.token]).toEqual([true, 'container_unreachable', null]);
  expect(await core.leases.revocableTokens(id)).toEqual([]);
  const d = await core.db.agentDispatch.findUniqueOrThrow({ where: { id } });
  expect([d.lastErrorCode, d.lastErrorMessage, d.endedAt !== null]).toEqual(['container_unreachable', 'pushes failed', true]);
  const l = await core.db.tokenLease.findUniqueOrThrow({ where: { dispatchId: id } });
  expect([l.tokenEnc, l.previousTokenEnc]).toEqual([null, null]);
});

it('closes without a revocation step (a dispatch whose workflow is gone) to the same end state', async () => {
  const id = await newDispatch();
  await core.leases.write(id, github(), 'run:1');
  await core.leases.close(id, { status: 'stopped', reason: 'token workflow no longer exists' });
  const after = (await core.leases.read(id))!;
  expect([after.ended, after.status, after.token]).toEqual([true, 'stopped', null]);
});

it('still revokes a token whose stated expiry passed moments ago (providers round it down, clocks differ), not one long expired', async () => {
  const { id, second } = await twoGenerations();
  // The current token's expires_at half a second ago (GitHub states it to the second, and the token
  // can work until the end of that second or by the provider's clock); the replaced one's long past.
  await core.db.$executeRaw`
    UPDATE token_leases SET expires_at = now() - interval '500 milliseconds',
      previous_expires_at = now() - ${REVOKE_AFTER_EXPIRY_MS + 5000} * interval '1 millisecond'
    WHERE dispatch_id = ${id}::uuid`;
  expect((await core.leases.revocableTokens(id)).map((t) => [t.which, t.token])).toEqual([['current', second.token]]);
  await core.db.$executeRaw`
    UPDATE token_leases SET expires_at = now() - ${REVOKE_AFTER_EXPIRY_MS + 5000} * interval '1 millisecond' WHERE dispatch_id = ${id}::uuid`;
  expect(await core.leases.revocableTokens(id)).toEqual([]);
});
