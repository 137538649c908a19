// The pull route's fresh-lease path against bare Fastify returning a constant, both driven by the
// same load generator over loopback; and 100 concurrent stale pulls, which must cost one mint.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { Client } from 'pg';
import { FakeContainerHost } from '../test/fakes/container';
import type { FakeGitHub, FakeGithubApp } from '../test/fakes/github';
import { LEASE_CHANNEL } from '../lib/lease-store';
import { freePort, PROJECT_ROOT } from '../scripts/temporal-cli';
import { cpuSeconds, type ServiceProcess } from './env';
import { call as callApi } from './fleet';

interface Load {
  req_per_s: number;
  /** CPU (user + system) of the server process per answered request, in microseconds. */
  cpu_us_per_req: number;
  p50_ms: number;
  p99_ms: number;
  requests: number;
  errors: number;
  non2xx: number;
}

async function load(url: string, headers: Record<string, string>, seconds: number, serverPid: number, body?: string): Promise<Load> {
  const cpuBefore = cpuSeconds(serverPid);
  const r = await autocannon({ url, method: 'POST', headers, body, connections: 10, duration: seconds });
  const cpu = cpuSeconds(serverPid) - cpuBefore;
  return {
    req_per_s: r.requests.average,
    cpu_us_per_req: (cpu * 1e6) / Math.max(1, r.requests.total),
    p50_ms: r.latency.p50,
    p99_ms: r.latency.p99,
    requests: r.requests.total,
    errors: r.errors,
    non2xx: r.non2xx,
  };
}

async function startBare(): Promise<{ url: string; pid: number; stop: () => void }> {
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', join(PROJECT_ROOT, 'bench', 'bare-server.ts'), String(port)], {
    cwd: PROJECT_ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve) => child.stdout!.on('data', (b: Buffer) => b.toString().includes('listening') && resolve()));
  return { url: `http://127.0.0.1:${port}/constant`, pid: child.pid!, stop: () => child.kill('SIGTERM') };
}

/**
 * From the API's /metrics: its pulls by where the lease came from (`repo_connect_pulls_total`) and
 * the young collections of its heap (count and seconds).
 */
async function apiCounters(apiUrl: string): Promise<{ hit: number; miss: number; lane: number; youngGcs: number; youngGcSeconds: number }> {
  const text = await (await fetch(`${apiUrl}/metrics`)).text();
  const value = (series: string) => Number(new RegExp(`^${series.replace(/[{}]/g, '\\$&')} (\\S+)$`, 'm').exec(text)?.[1] ?? 0);
  return {
    hit: value('repo_connect_pulls_total{result="hit"}'),
    miss: value('repo_connect_pulls_total{result="miss"}'),
    lane: value('repo_connect_pull_lane_hits_total'),
    youngGcs: value('repo_connect_process_nodejs_gc_duration_seconds_count{kind="minor"}'),
    youngGcSeconds: value('repo_connect_process_nodejs_gc_duration_seconds_sum{kind="minor"}'),
  };
}

export async function runPullBench(o: {
  api: ServiceProcess;
  gh: FakeGitHub;
  app: FakeGithubApp;
  adminToken: string;
  databaseUrl: string;
  seconds: number;
  log: (l: string) => void;
}) {
  const call = <T>(method: string, path: string, body?: unknown) => callApi<T>(o, method, path, body);
  const containers = await FakeContainerHost.start();
  const owner = crypto.randomUUID();
  const inst = o.gh.addInstallation({ appId: o.app.appId, account: { login: 'bench-pull' }, repositories: 1 });
  const integ = await call<{ id: string }>('POST', '/api/integrations', {
    provider: 'github',
    owner_id: owner,
    installation_id: inst.installationId,
    app_type: 'standard',
  });
  const town = await call<{ id: string }>('POST', '/api/towns', { name: 'bench-pull', owner_id: owner });
  const rig = await call<{ id: string }>('POST', `/api/towns/${town.id}/rigs`, {
    name: 'r',
    platform_integration_id: integ.id,
    repository_id: inst.repositories[0].id,
  });
  const url = containers.add('pull');
  const d = await call<{ dispatch_id: string; container_token: string }>('POST', `/api/rigs/${rig.id}/dispatches`, { container_url: url });
  containers.setBearer('pull', d.container_token);
  await containers.waitForPush('pull', (p) => p.generation === 1, 60_000);

  const bare = await startBare();
  const pullUrl = `${o.api.url}/api/internal/rigs/${rig.id}/git-token`;
  const auth = { authorization: `Bearer ${d.container_token}` };
  const apiPid = o.api.child.pid!;
  o.log('warming up');
  await load(bare.url, {}, 3, bare.pid);
  await load(pullUrl, auth, 3, apiPid);
  // Alternating rounds (bare first, then pull first, ...), short and many: this VM's speed drifts by
  // up to half over tens of seconds, which lands on both sides of a round, and the median round's
  // ratio is reported. CPU per request is read too: it does not depend on the load generator.
  // Each round also pulls with a body (`{}`, as containers sent before the lane), which the lane
  // leaves to the framework: what the lane saves, measured beside it (after the pair, so the pair
  // stays adjacent).
  const ROUNDS = 7;
  o.log(`measuring bare Fastify and the pull route, ${ROUNDS} alternating rounds of ${o.seconds} s each`);
  const withBody = { ...auth, 'content-type': 'application/json' };
  const before = await apiCounters(o.api.url);
  const rounds: Array<{ bare: Load; pull: Load; ratio: number; framework: Load; framework_ratio: number }> = [];
  let frameworkPulls = 0;
  for (let i = 0; i < ROUNDS; i++) {
    const first = i % 2 === 0 ? await load(bare.url, {}, o.seconds, bare.pid) : await load(pullUrl, auth, o.seconds, apiPid);
    const second = i % 2 === 0 ? await load(pullUrl, auth, o.seconds, apiPid) : await load(bare.url, {}, o.seconds, bare.pid);
    const [b, p] = i % 2 === 0 ? [first, second] : [second, first];
    const laneBefore = (await apiCounters(o.api.url)).lane;
    const framework = await load(pullUrl, withBody, o.seconds, apiPid, '{}');
    const laneAfter = (await apiCounters(o.api.url)).lane;
    frameworkPulls += framework.requests - (laneAfter - laneBefore);
    rounds.push({ bare: b, pull: p, ratio: p.req_per_s / b.req_per_s, framework, framework_ratio: framework.req_per_s / b.req_per_s });
  }
  bare.stop();
  const after = await apiCounters(o.api.url);
  const median = [...rounds].sort((x, y) => x.ratio - y.ratio)[Math.floor(ROUNDS / 2)];
  const medianFramework = [...rounds].sort((x, y) => x.framework_ratio - y.framework_ratio)[Math.floor(ROUNDS / 2)];

  // 100 concurrent pulls of a lease that looks nearly expired (as after a late refresh).
  const db = new Client({ connectionString: o.databaseUrl });
  await db.connect();
  await db.query(
    `UPDATE token_leases SET created_at = now() - interval '1 hour', expires_at = now() + interval '2 seconds' WHERE dispatch_id = $1`,
    [d.dispatch_id],
  );
  await db.query('SELECT pg_notify($1, $2)', [LEASE_CHANNEL, d.dispatch_id]);
  await db.end();
  await new Promise((r) => setTimeout(r, 300));
  const mintsBefore = o.gh.stats.mintsFor(inst.installationId);
  const stale = await Promise.all(
    Array.from({ length: 100 }, () =>
      fetch(pullUrl, { method: 'POST', headers: auth }).then(async (r) => ({
        status: r.status,
        body: (await r.json()) as { generation: number },
      })),
    ),
  );
  const staleMints = o.gh.stats.mintsFor(inst.installationId) - mintsBefore;
  await call('POST', `/api/dispatches/${d.dispatch_id}/stop`);
  await containers.close();
  return {
    bare_fastify: median.bare,
    pull_route: median.pull,
    pull_vs_bare_throughput_ratio: median.ratio,
    /** Pulls with a body, which the lane leaves to the framework: the route without the lane. */
    pull_route_framework: medianFramework.framework,
    pull_framework_vs_bare_throughput_ratio: medianFramework.framework_ratio,
    rounds,
    /** Of the pulls without a body, those answered in the lane (api/routes/pull-lane.ts). */
    served_in_lane: after.lane - before.lane,
    /** Of the pulls with a body, those the framework answered: all of them when the lane leaves bodies alone. */
    framework_pulls: frameworkPulls,
    /** Pulls answered from the API's lease cache and from Postgres while measuring: misses mean the cache was not serving. */
    served_from_memory: after.hit - before.hit,
    served_from_postgres: after.miss - before.miss,
    /**
     * The API's young collections while measuring, in ms per 1,000 pulls: under 1 in a healthy
     * process, about 10 in the state pretenuring once caused (lib/process-tuning.ts, tuneApiHeap).
     */
    api_young_gc_ms_per_1000_pulls:
      ((after.youngGcSeconds - before.youngGcSeconds) * 1e6) / Math.max(1, after.hit + after.miss - before.hit - before.miss),
    api_young_gcs: after.youngGcs - before.youngGcs,
    stale_pulls: 100,
    stale_pulls_ok: stale.filter((s) => s.status === 200 && s.body.generation === 2).length,
    stale_pulls_upstream_mints: staleMints,
  };
}
