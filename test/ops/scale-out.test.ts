// Scale-out: two worker processes and two API processes of the real entry point share one Postgres
// and one task queue. Dispatches started through API A get refreshed tokens from both workers;
// pulls through API B return what was last pushed (B's cache follows lease writes made elsewhere);
// the remaining worker carries on alone after the other drains; stops through B revoke; and GitHub
// minted exactly one token per generation.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { FakeContainerHost } from '../fakes/container';
import { eventually, startHarness, type Harness } from '../helpers/harness';
import { dispatchTo, githubRig, githubWorld, pull, type Dispatched, type GithubWorld } from '../helpers/scenario';
import { parseExposition, sumOf } from './prom-text';
import { spawnService, type ServiceProcess } from './service-process';
import { PROJECT_ROOT } from '../../scripts/temporal-cli';

const DISPATCHES = 6;

let world: GithubWorld;
let containers: FakeContainerHost;
let h: Harness;
let procs: ServiceProcess[] = [];
let [workerA, workerB, apiA, apiB] = [] as ServiceProcess[];

beforeAll(async () => {
  world = await githubWorld({ tokenLifetimeSeconds: 12 });
  containers = await FakeContainerHost.start();
  // In-process only for its database handle and configuration: it runs no worker.
  h = await startHarness({ env: { ...world.env, TOKEN_REFRESH_MARGIN_SECONDS: '5', REFRESH_JITTER_MAX_SECONDS: '1' }, worker: false });
  const start = (role: 'worker' | 'api', label: string) => spawnService({ role, config: h.core.config, env: world.env, label });
  procs = await Promise.all([start('worker', 'worker-a'), start('worker', 'worker-b'), start('api', 'api-a'), start('api', 'api-b')]);
  [workerA, workerB, apiA, apiB] = procs;
}, 180_000);

afterAll(async () => {
  for (const p of procs) p.kill('SIGKILL');
  await h?.close();
  await containers?.close();
  await world?.gh.close();
});

/** The scenario helpers, pointed at one API process instead of the harness's own listener. */
function through(api: ServiceProcess): Harness {
  const call: Harness['call'] = async (method, path, body, headers = {}) => {
    const res = await fetch(`${api.url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${h.core.config.adminApiToken}`,
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...headers,
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : null) as never, headers: res.headers };
  };
  return { ...h, url: api.url!, call };
}

async function mintedBy(worker: ServiceProcess): Promise<number> {
  const res = await fetch(worker.metricsUrl!);
  expect(res.status).toBe(200);
  return sumOf(parseExposition(await res.text()), 'repo_connect_token_mints_total', { provider: 'github', outcome: 'minted' });
}

/** Exit code of the container health probe (scripts/healthcheck.mjs) aimed at `proc`. */
function probe(proc: ServiceProcess): number | null {
  const port = new URL(proc.url ?? proc.metricsUrl!).port;
  const env = { PATH: process.env.PATH, ROLE: proc.role, ...(proc.role === 'worker' ? { WORKER_METRICS_PORT: port } : { PORT: port }) };
  return spawnSync(process.execPath, [join(PROJECT_ROOT, 'scripts', 'healthcheck.mjs')], { env, timeout: 10_000 }).status;
}

/**
 * The probe's verdict as Docker's HEALTHCHECK reaches it (`--retries=3`, Dockerfile): healthy at the first
 * of three probes that passes. Just after start a worker process compiles its workflow bundle in one
 * thread per task queue, and on a busy two-core machine (a full CI run) its first answer once came after
 * the probe's 4 s timeout.
 */
async function probeAsDocker(proc: ServiceProcess): Promise<number | null> {
  let code = probe(proc);
  for (let retry = 1; retry < 3 && code !== 0; retry++) {
    await new Promise((r) => setTimeout(r, 2000));
    code = probe(proc);
  }
  return code;
}

/** Pulls through `api` and checks the answer is the token pushed for the same generation, and no older than `atLeast`. */
async function pullMatchesPush(api: Harness, d: Dispatched, atLeast: number) {
  const pulled = await pull(api, d.rigId, d.containerToken);
  expect(pulled.status).toBe(200);
  expect(pulled.body.generation).toBeGreaterThanOrEqual(atLeast);
  const pushed = await containers.waitForPush(d.container, (p) => p.generation === pulled.body.generation, 20_000);
  expect(pulled.body.token).toBe(pushed.token);
  return pulled.body.generation;
}

it('spreads the token loops over both workers, serves pulls and stops from the other API, and never mints twice per generation', async () => {
  const A = through(apiA);
  const B = through(apiB);
  // The image's health probe passes for every role (the API's /healthz, a worker's own /healthz).
  const verdicts: Array<number | null> = [];
  for (const proc of procs) verdicts.push(await probeAsDocker(proc));
  expect(verdicts).toEqual([0, 0, 0, 0]);
  const rigs = await Promise.all(Array.from({ length: DISPATCHES }, () => githubRig(A, world, { repos: 1 })));
  // Registering an installation mints one token of its own (to list its repositories).
  const mintsBefore = rigs.map((rig) => world.gh.stats.mintsFor(rig.installationId));
  const ds = await Promise.all(rigs.map((rig, i) => dispatchTo(A, containers, rig.rigId, `scale-${i}`)));

  // Two refresh cycles for every dispatch, each pushed token usable at GitHub when it arrived.
  const third = await Promise.all(ds.map((d) => containers.waitForPush(d.container, (p) => p.generation === 3, 60_000)));
  third.forEach((p, i) => expect(p.receivedAt).toBeLessThan(Date.parse(containers.pushes(ds[i].container)[1].expires_at!)));

  // Both workers did part of the work.
  const [mintedA, mintedB] = [await mintedBy(workerA), await mintedBy(workerB)];
  expect(mintedA).toBeGreaterThan(0);
  expect(mintedB).toBeGreaterThan(0);
  expect(mintedA + mintedB).toBeGreaterThanOrEqual(3 * DISPATCHES);

  // B never saw these dispatches start, yet serves exactly what was pushed.
  const pulledGen = await Promise.all(ds.map((d) => pullMatchesPush(B, d, 3)));

  // Worker A drains and exits cleanly; worker B alone keeps every dispatch refreshed, and B's
  // cached leases are replaced by the new ones (invalidated by the writes of another process).
  const drainStarted = Date.now();
  workerA.kill('SIGTERM');
  const exit = await workerA.exited(drainStarted);
  expect(exit.code).toBe(0);
  expect(probe(workerA)).toBe(1);
  await Promise.all(
    ds.map((d, i) => containers.waitForPush(d.container, (p) => p.generation >= pulledGen[i] + 1 && p.receivedAt > drainStarted, 40_000)),
  );
  expect(await mintedBy(workerB)).toBeGreaterThan(mintedB);
  await Promise.all(ds.map((d, i) => pullMatchesPush(B, d, pulledGen[i] + 1)));

  // Stop every dispatch through B.
  for (const d of ds) expect((await B.call('POST', `/api/dispatches/${d.dispatchId}/stop`)).status).toBe(202);
  const finals = await Promise.all(
    ds.map((d) =>
      eventually(
        async () => {
          const r = await A.call<{ status: string; generation: number }>('GET', `/api/dispatches/${d.dispatchId}`);
          return r.body.status === 'stopped' ? r.body : null;
        },
        30_000,
        `${d.container} stopped`,
      ),
    ),
  );
  for (const d of ds) {
    expect(world.gh.isTokenLive(containers.latest(d.container)!.token)).toBe(false);
    expect((await pull(B, d.rigId, d.containerToken)).status).toBe(410);
  }

  // One GitHub mint per generation, one distinct token per generation, one ledger entry each.
  for (const [i, d] of ds.entries()) {
    const generation = finals[i].generation;
    expect([d.container, world.gh.stats.mintsFor(rigs[i].installationId) - mintsBefore[i]]).toEqual([d.container, generation]);
    const tokens = new Set(containers.pushes(d.container).map((p) => p.token));
    expect([d.container, tokens.size]).toEqual([d.container, generation]);
    const minted = await h.core.db.tokenEvent.findMany({
      where: { dispatchId: d.dispatchId, kind: 'minted' },
      select: { generation: true },
    });
    expect(minted.map((e) => e.generation).sort((x, y) => x - y)).toEqual(Array.from({ length: generation }, (_, g) => g + 1));
  }
}, 240_000);
