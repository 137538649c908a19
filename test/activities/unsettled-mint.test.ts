// A mint whose store failed while Postgres went down (a restart, a cut network): the real
// activities over a real Postgres reached through a proxy that goes down at the moment the lease's
// store goes by, before Postgres gets it or after it committed. Whether the token is revoked must
// follow what Postgres holds, which the activity learns only once Postgres is back.
import { createMintSettler } from '../../activities/unsettled-mints';
import { eventually, runLogger } from '../helpers/harness';
import { PgProxy } from '../helpers/pg-proxy';
import { testDatabaseUrl } from '../helpers/test-env';
import { githubRig, mintInput, newDispatch, runActivity, startActivityWorld, type ActivityWorld } from './activity-world';

let proxy: PgProxy;
let w: ActivityWorld;
beforeAll(async () => {
  proxy = await PgProxy.start(testDatabaseUrl());
  w = await startActivityWorld({ databaseUrl: proxy.url });
});
afterAll(async () => {
  await w?.close();
  await proxy?.close();
});

/** Waits until `ok()` holds (polled as the harness polls). */
const until = (what: string, ok: () => boolean, ms = 15_000) => eventually(async () => ok(), ms, what);

const logged = (msg: string, dispatchId: string) =>
  w.logs.some((l) => {
    const line = JSON.parse(l) as { msg: string; dispatchId?: string };
    return line.msg === msg && line.dispatchId === dispatchId;
  });

/** A first mint (with push) whose store meets Postgres going down at `point`; returns its token and input. */
async function mintIntoOutage(point: 'before' | 'after') {
  const { rigId } = await githubRig(w);
  const { dispatchId, container } = await newDispatch(w, rigId);
  const input = mintInput(dispatchId, { push: true });
  const issued = new Set(w.github.gh.issuedTokens());
  const cut = proxy.cutOn(input.mintKey, point);
  await expect(runActivity(w.env(), w.activities.mintLease, input)).rejects.toMatchObject({ type: 'provider_unavailable' });
  await cut;
  const minted = w.github.gh.issuedTokens().filter((t) => !issued.has(t));
  expect(minted).toHaveLength(1);
  expect(logged('unsettled mint: Postgres cannot say whether the lease was stored; asking again', dispatchId)).toBe(true);
  return { dispatchId, container, input, token: minted[0] };
}

it('a store that committed though its answer was lost keeps its token: the retry hands it out and it works', async () => {
  const { dispatchId, container, input, token } = await mintIntoOutage('after');
  // While Postgres cannot say, the token is neither revoked nor pushed.
  expect(w.github.gh.isTokenLive(token)).toBe(true);
  expect(w.containers.latest(container)).toBeUndefined();

  proxy.up();
  // The workflow retries the same mint: the stored lease comes back, and the workflow's push sends it.
  const again = await runActivity(w.env(), w.activities.mintLease, input);
  expect(again).toMatchObject({ generation: 1, retried: true });
  expect(await runActivity(w.env(), w.activities.pushLease, { dispatchId })).toMatchObject({ outcome: 'acknowledged', generation: 1 });
  expect(w.containers.latest(container)!.token).toBe(token);

  await until('the pending check', () => logged('unsettled mint settled', dispatchId));
  expect(w.github.gh.isTokenRevoked(token)).toBe(false);
  expect(w.github.gh.isTokenLive(token)).toBe(true);
});

it('a store that never reached Postgres gets its token revoked once Postgres answers, and not before', async () => {
  const { dispatchId, container, token } = await mintIntoOutage('before');
  await new Promise((r) => setTimeout(r, 1500)); // past the first re-check, which Postgres cannot answer
  expect(w.github.gh.isTokenRevoked(token)).toBe(false);

  proxy.up();
  await until('the revocation', () => w.github.gh.isTokenRevoked(token));
  expect(logged('unsettled mint settled', dispatchId)).toBe(true);
  expect(w.containers.latest(container)).toBeUndefined();
  expect(await w.core.leases.read(dispatchId)).toMatchObject({ generation: 0, token: null });
});

describe('the pending checks, over a Postgres that answers on cue', () => {
  function settlerOver(answers: Array<boolean | 'down'>) {
    const asked: number[] = [];
    const revoked: string[] = [];
    const { logger, logs } = runLogger('settler');
    const started = Date.now();
    const settler = createMintSettler({
      holds: async () => {
        asked.push(Date.now() - started);
        const a = answers.shift() ?? 'down';
        if (a === 'down') throw new Error('connection refused');
        return a;
      },
      revoke: async (_dispatchId, token) => revoked.push(token),
      logger,
      delaysMs: [100, 200, 400],
    });
    const last = () => (JSON.parse(logs.at(-1)!) as { msg: string }).msg;
    return { settler, asked, revoked, last };
  }

  it('asks again after each wait until Postgres answers, then revokes the token only if it is not held', async () => {
    const inAnHour = new Date(Date.now() + 3_600_000);
    const held = settlerOver(['down', 'down', 'down', true]);
    const orphan = settlerOver(['down', 'down', false]);
    await held.settler.settle('d1', 'ghs_held', inAnHour);
    await orphan.settler.settle('d2', 'ghs_orphan', inAnHour);
    expect([held.settler.pending(), orphan.settler.pending()]).toEqual([1, 1]);
    await until('both answers', () => held.asked.length === 4 && orphan.asked.length === 3 && orphan.revoked.length === 1);

    // Waits of 100, 200 and 400 ms between the checks.
    expect(held.asked[3] - held.asked[0]).toBeGreaterThanOrEqual(690);
    expect(held.revoked).toEqual([]);
    expect(orphan.revoked).toEqual(['ghs_orphan']);
    expect(held.last()).toBe('unsettled mint settled');
    expect([held.settler.pending(), orphan.settler.pending()]).toEqual([0, 0]);
  });

  it('an answer at the first check settles at once; a token that expires first is let go without a revoke', async () => {
    const known = settlerOver([false]);
    await known.settler.settle('d3', 'ghs_now', null);
    expect(known.revoked).toEqual(['ghs_now']);
    expect(known.settler.pending()).toBe(0);

    const expiring = settlerOver(['down', 'down', 'down', false]);
    await expiring.settler.settle('d4', 'ghs_expiring', new Date(Date.now() + 250));
    await until('the token to be let go', () => expiring.settler.pending() === 0);
    expect(expiring.asked.length).toBeLessThanOrEqual(3);
    expect(expiring.revoked).toEqual([]);
    expect(expiring.last()).toBe('unsettled mint: the token expired before Postgres answered');
  });
});
