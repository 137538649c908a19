// 1,000 dispatches started together against the fakes (30 s tokens), three refresh cycles each:
// start rate, refresh lateness, validity left at each push, upstream calls per cycle, worker RSS.
import { Client } from 'pg';
import { FakeContainerHost, type ReceivedPush } from '../test/fakes/container';
import type { FakeGitHub, FakeGithubApp } from '../test/fakes/github';
import { computeRefreshAt } from '../workflows/refresh-schedule';
import { fingerprint } from '../lib/secrets';
import { cpuReading, cpuUse, percentile, pool, type CpuReading, type ServiceProcess } from './env';
import { call, createRigs, settledRss, waitUntilStopped } from './fleet';

export interface TokenLoopOptions {
  api: ServiceProcess;
  worker: ServiceProcess;
  /** The Temporal dev server's process, whose CPU time is reported beside the worker's. */
  temporalPid: number;
  gh: FakeGitHub;
  app: FakeGithubApp;
  adminToken: string;
  databaseUrl: string;
  dispatches: number;
  cycles: number;
  marginSeconds: number;
  jitterMaxSeconds: number;
  log: (line: string) => void;
}

export async function runTokenLoop(o: TokenLoopOptions) {
  const containers = await FakeContainerHost.start({ acceptBeforeBearer: true });
  const rigs = await createRigs(o, Math.ceil(o.dispatches / 10));
  // One dispatch first, so the worker's workflow sandbox exists before the baseline is taken.
  const warmUrl = containers.add('warmup');
  const warm = await call<{ dispatch_id: string; container_token: string }>(o, 'POST', `/api/rigs/${rigs[0]}/dispatches`, {
    container_url: warmUrl,
  });
  containers.setBearer('warmup', warm.container_token);
  await containers.waitForPush('warmup', (p) => p.generation === 1, 60_000);
  await call(o, 'POST', `/api/dispatches/${warm.dispatch_id}/stop`);
  // The baseline is a quiet worker: V8's memory reducer and malloc return start-up garbage over
  // tens of seconds, so measuring early would count it against the baseline and flatter the
  // fleet's figure. Wait until the worker's RSS has stopped falling (or two minutes).
  const rssBefore = await settledRss(o.worker, o.log);
  const mintsBefore = o.gh.accessTokenRequests.filter((r) => r.repositoryIds !== null).length;
  const verifiesBefore = o.gh.stats.verifications;

  o.log(`starting ${o.dispatches} dispatches`);
  const cpuBefore = cpuReading(o);
  const started = performance.now();
  const ds = await pool(
    Array.from({ length: o.dispatches }, (_, i) => i),
    64,
    async (i) => {
      const name = `d${i}`;
      const url = containers.add(name);
      const d = await call<{ dispatch_id: string; container_token: string }>(o, 'POST', `/api/rigs/${rigs[i % rigs.length]}/dispatches`, {
        container_url: url,
      });
      containers.setBearer(name, d.container_token);
      return { name, id: d.dispatch_id };
    },
  );
  const startSeconds = (performance.now() - started) / 1000;
  await Promise.all(ds.map((d) => containers.waitForPush(d.name, (p) => p.generation === 1, 180_000)));
  const allFirstSeconds = (performance.now() - started) / 1000;
  // From here to the last awaited generation the fleet only refreshes: the CPU per cycle that the
  // direct path is compared with (no starts, no first mints in it).
  const cpuRefreshing = cpuReading(o);
  o.log(`all ${o.dispatches} containers hold a token after ${allFirstSeconds.toFixed(1)} s; waiting ${o.cycles} refresh cycles`);

  const lastGen = o.cycles + 1;
  await Promise.all(ds.map((d) => containers.waitForPush(d.name, (p) => p.generation === lastGen, 600_000)));
  const rssAfter = o.worker.rssMb();
  const cpuAfter = cpuReading(o);

  // Dispatches that got their first token early are a cycle or two further by now: stop them all,
  // then compare upstream calls with the generations the ledger recorded over the same window.
  const stopping = performance.now();
  await pool(ds, 64, (d) => call(o, 'POST', `/api/dispatches/${d.id}/stop`));
  const stopped = await waitUntilStopped(
    o.databaseUrl,
    ds.map((d) => d.id),
  );
  const stopSeconds = (performance.now() - stopping) / 1000;
  const mints = o.gh.accessTokenRequests.filter((r) => r.repositoryIds !== null).length - mintsBefore;
  const verifies = o.gh.stats.verifications - verifiesBefore;

  // Planned refresh times come from the same pure function the workflow uses, fed with the mint
  // time and expiry recorded in the ledger.
  const db = new Client({ connectionString: o.databaseUrl });
  await db.connect();
  const ids = ds.map((d) => d.id);
  const { rows } = await db.query<{ dispatch_id: string; generation: number; at: Date; expires_at: Date }>(
    "SELECT dispatch_id, generation, at, expires_at FROM token_events WHERE kind = 'minted' AND dispatch_id = ANY($1::uuid[])",
    [ids],
  );
  const revoked = await db.query<{ n: string }>(
    "SELECT count(DISTINCT dispatch_id) AS n FROM token_events WHERE kind = 'revoked' AND dispatch_id = ANY($1::uuid[])",
    [ids],
  );
  await db.end();
  const minted = new Map(rows.map((r) => [`${r.dispatch_id}:${r.generation}`, r]));

  const lateness: number[] = [];
  /** Lateness of each dispatch's first, second, … refresh: the first overlaps the fleet's starts. */
  const latenessByRefresh: number[][] = Array.from({ length: lastGen - 1 }, () => []);
  const validityLeft: number[] = [];
  let expiredAtPush = 0;
  let gaps = 0;
  for (const d of ds) {
    const pushes = containers.pushes(d.name).filter((p, i, all) => all.findIndex((q) => q.generation === p.generation) === i);
    for (const p of pushes) {
      const left = (Date.parse(p.expires_at!) - p.receivedAt) / 1000;
      validityLeft.push(left);
      if (left <= 0) expiredAtPush++;
    }
    for (let g = 1; g < lastGen; g++) {
      const m = minted.get(`${d.id}:${g}`);
      const next = pushes.find((p: ReceivedPush) => p.generation === g + 1);
      if (!m || !next) continue;
      const planned = computeRefreshAt({
        mintedAtMs: m.at.getTime(),
        expiresAtMs: m.expires_at.getTime(),
        marginMs: o.marginSeconds * 1000,
        jitterMaxMs: o.jitterMaxSeconds * 1000,
        seed: `${d.id}:${g}`,
      });
      lateness.push((next.receivedAt - planned) / 1000);
      latenessByRefresh[g - 1].push((next.receivedAt - planned) / 1000);
      if (next.receivedAt >= m.expires_at.getTime()) gaps++;
    }
  }
  const generations = rows.length;
  const mintsBetween = (a: CpuReading, b: CpuReading) => rows.filter((r) => r.at.getTime() >= a.at && r.at.getTime() <= b.at).length;
  const mintsInWindow = mintsBetween(cpuBefore, cpuAfter);
  const badBearers = ds.reduce((n, d) => n + containers.rejected(d.name), 0);
  const live = ds.filter((d) => {
    const last = containers.latest(d.name);
    return last !== undefined && o.gh.isTokenLive(last.token);
  });
  // What a leak looked like, for the one who investigates it (fingerprints only).
  const leaks = await describeLeaks(
    o,
    live.map((d) => ({
      id: d.id,
      pushes: containers
        .pushes(d.name)
        .map((p) => ({ generation: p.generation, fingerprint: fingerprint(p.token), at: new Date(p.receivedAt).toISOString() })),
    })),
  );
  await containers.close();
  return {
    dispatches: o.dispatches,
    cycles: o.cycles,
    start_rate_per_s: o.dispatches / startSeconds,
    all_first_tokens_s: allFirstSeconds,
    refresh_lateness_p50_s: percentile(lateness, 50),
    refresh_lateness_p99_s: percentile(lateness, 99),
    refresh_lateness_max_s: Math.max(...lateness),
    refresh_lateness_p99_by_refresh_s: latenessByRefresh.map((l) => percentile(l, 99)),
    least_validity_at_push_s: Math.min(...validityLeft),
    expired_at_push: expiredAtPush,
    refreshes_after_expiry: gaps,
    generations_minted: generations,
    upstream_mints: mints,
    upstream_mints_per_dispatch_cycle: mints / generations,
    check_calls_per_dispatch_cycle: verifies / generations,
    stop_all_s: stopSeconds,
    stopped,
    revoked_at_stop: Number(revoked.rows[0]?.n ?? 0),
    tokens_live_after_stop: live.length,
    leaks,
    worker_rss_before_mb: rssBefore,
    worker_rss_after_mb: rssAfter,
    worker_rss_per_1000_workflows_mb: ((rssAfter - rssBefore) / o.dispatches) * 1000,
    measured_refreshes: lateness.length,
    cpu: {
      ...cpuUse(cpuBefore, cpuAfter, mintsInWindow),
      refreshing: cpuUse(cpuRefreshing, cpuAfter, mintsBetween(cpuRefreshing, cpuAfter)),
    },
    pushes_with_a_wrong_bearer: badBearers,
  };
}

/** The ledger of each dispatch whose last pushed token was still live after its stop. */
async function describeLeaks(o: TokenLoopOptions, live: Array<{ id: string; pushes: unknown[] }>) {
  if (live.length === 0) return [];
  const db = new Client({ connectionString: o.databaseUrl });
  await db.connect();
  try {
    return await Promise.all(
      live.map(async (d) => ({
        ...d,
        events: (
          await db.query('SELECT kind, generation, fingerprint, detail, at FROM token_events WHERE dispatch_id = $1 ORDER BY at', [d.id])
        ).rows,
      })),
    );
  } finally {
    await db.end();
  }
}
