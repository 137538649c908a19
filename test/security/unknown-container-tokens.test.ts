// Item 2 of the security review: the pull limiter keyed on the hash of whatever bearer arrived, so
// random bearers each got a fresh bucket, a Postgres lookup and a map entry. Now failed lookups
// count per source address (429 with Retry-After past PULL_RATE_LIMIT_PER_MINUTE, before Postgres),
// and an unknown hash is answered from memory for a few seconds. "Before Postgres" is shown with
// agent_dispatches locked: a lookup would wait for the lock, an answer from memory does not.
import { randomBytes, randomUUID } from 'node:crypto';
import { request } from 'node:http';
import { Client } from 'pg';
import { LEASE_CHANNEL } from '../../lib/lease-store';
import { sha256Hex } from '../../lib/secrets';
import { FakeContainerHost } from '../fakes/container';
import { startHarness, type Harness } from '../helpers/harness';
import { dispatchTo, githubRig, githubWorld, type GithubWorld } from '../helpers/scenario';
import { testDatabaseUrl } from '../helpers/test-env';

const LIMIT = 10;
let world: GithubWorld;
let containers: FakeContainerHost;
let h: Harness;

beforeAll(async () => {
  world = await githubWorld();
  containers = await FakeContainerHost.start();
  h = await startHarness({ env: { ...world.env, PULL_RATE_LIMIT_PER_MINUTE: String(LIMIT) } });
});
afterAll(async () => {
  await h?.close();
  await containers?.close();
  await world?.gh.close();
});

/** A pull sent from `from` (a loopback address: 127.0.0.0/8 is all this machine), answered within `timeoutMs` or reported as 'no answer'. */
function pullFrom(
  from: string,
  rigId: string,
  bearer: string,
  timeoutMs = 5000,
): Promise<{ status: number | 'no answer'; retryAfter?: string; code?: string }> {
  return new Promise((resolve) => {
    const url = new URL(`${h.url}/api/internal/rigs/${rigId}/git-token`);
    const req = request(url, { method: 'POST', localAddress: from, headers: { authorization: `Bearer ${bearer}` } }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => {
        clearTimeout(timer);
        const code = (JSON.parse(text || '{}') as { error?: { code?: string } }).error?.code;
        resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'] as string | undefined, code });
      });
    });
    const timer = setTimeout(() => {
      req.destroy();
      resolve({ status: 'no answer' });
    }, timeoutMs);
    req.on('error', () => undefined);
    req.end();
  });
}

/** Runs `fn` while agent_dispatches is locked against reads: any container-token lookup waits. */
async function withDispatchesLocked<T>(fn: () => Promise<T>): Promise<T> {
  const locker = new Client({ connectionString: testDatabaseUrl() });
  await locker.connect();
  try {
    await locker.query('BEGIN');
    await locker.query('LOCK TABLE agent_dispatches IN ACCESS EXCLUSIVE MODE');
    return await fn();
  } finally {
    await locker.query('ROLLBACK').catch(() => undefined);
    await locker.end();
  }
}

const randomBearer = () => `rcc_${randomBytes(32).toString('base64url')}`;

describe('unknown container tokens', () => {
  it(`answers 429 with Retry-After after ${LIMIT} failed lookups from one address, without asking Postgres`, async () => {
    const rig = randomUUID();
    for (let i = 0; i < LIMIT; i++) expect((await pullFrom('127.0.0.2', rig, randomBearer())).status).toBe(401);
    const limited = await withDispatchesLocked(() => pullFrom('127.0.0.2', rig, randomBearer(), 1500));
    expect(limited.status).toBe(429);
    expect(limited.code).toBe('rate_limited');
    expect(Number(limited.retryAfter)).toBeGreaterThanOrEqual(1);
    // Another address is not limited by this one's failures.
    expect((await pullFrom('127.0.0.3', rig, randomBearer())).status).toBe(401);
  });

  it('answers a repeated unknown token from memory, without asking Postgres again', async () => {
    // The table lock can wait behind other test files' transactions; one that came after the 5 s the
    // miss is remembered proves nothing, so the scenario is run again (at most 3 times).
    for (let attempt = 1; ; attempt++) {
      const bearer = randomBearer();
      const firstAt = Date.now();
      expect((await pullFrom('127.0.0.4', randomUUID(), bearer)).status).toBe(401);
      const again = await withDispatchesLocked(async () =>
        Date.now() - firstAt < 4000 ? pullFrom('127.0.0.4', randomUUID(), bearer, 1500) : null,
      );
      if (again === null && attempt < 3) continue;
      expect(again?.status).toBe(401);
      break;
    }
  });

  it('keeps serving a known token from an address that is limited for unknown ones, cached or not', async () => {
    const rig = await githubRig(h, world, { repos: 1 });
    const d = await dispatchTo(h, containers, rig.rigId, 'known-token');
    await containers.waitForPush(d.container, (p) => p.generation === 1);
    expect((await pullFrom('127.0.0.5', rig.rigId, d.containerToken)).status).toBe(200); // cached from here on
    for (let i = 0; i < LIMIT; i++) await pullFrom('127.0.0.5', rig.rigId, randomBearer());
    expect((await pullFrom('127.0.0.5', rig.rigId, randomBearer())).status).toBe(429);
    expect((await pullFrom('127.0.0.5', rig.rigId, d.containerToken)).status).toBe(200);
    // Its cached copy goes (as at every refresh: the lease's NOTIFY): the token is read from Postgres
    // again, and still not charged to the address that spent its budget on unknown ones.
    await h.core.db.$executeRaw`SELECT pg_notify(${LEASE_CHANNEL}, ${d.dispatchId})`;
    await new Promise((r) => setTimeout(r, 300));
    const misses = h.core.metrics.servedPulls.miss;
    expect((await pullFrom('127.0.0.5', rig.rigId, d.containerToken)).status).toBe(200);
    expect(h.core.metrics.servedPulls.miss - misses).toBe(1); // read from Postgres, not from the copy
    expect((await pullFrom('127.0.0.5', rig.rigId, randomBearer())).status).toBe(429); // unknown ones still are
    await h.call('POST', `/api/dispatches/${d.dispatchId}/stop`);
  });

  it('never keeps a dispatch created after its token was refused in the negative cache', async () => {
    const rig = await githubRig(h, world, { repos: 1 });
    const bearer = randomBearer();
    expect((await pullFrom('127.0.0.6', rig.rigId, bearer)).status).toBe(401); // now a cached miss
    // The row appears (as an INSERT from any API instance would make it).
    const id = randomUUID();
    await h.core.db.agentDispatch.create({
      data: {
        id,
        rigId: rig.rigId,
        containerUrl: 'http://127.0.0.1:9',
        containerTokenHash: sha256Hex(bearer),
        containerTokenEnc: 'x',
        workflowId: `wf-${id}`,
      },
    });
    const created = Date.now();
    // Asked for another rig, a known token answers 403: the lookup found it. Far sooner than the 5 s a miss is cached.
    let res = await pullFrom('127.0.0.6', randomUUID(), bearer);
    while (res.status === 401 && Date.now() - created < 4000) res = await pullFrom('127.0.0.6', randomUUID(), bearer);
    expect(res.status).toBe(403);
    expect(Date.now() - created).toBeLessThan(1000);
    await h.core.db.agentDispatch.delete({ where: { id } });
  });
});
