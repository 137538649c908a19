// Dispatches at real token lifetimes (1-hour tokens), where a dispatch sleeps nearly all its life:
// the worker memory a fleet of sleepers holds, and the first-token latency new dispatches see while
// that fleet is held. The direct loop (direct-loop.ts) runs on the sleepers before they stop.
import { FakeContainerHost } from '../test/fakes/container';
import type { FakeGitHub, FakeGithubApp } from '../test/fakes/github';
import { cpuReading, cpuUse, percentile, pool, type ServiceProcess } from './env';
import { call, createRigs, settledRss, waitUntilStopped } from './fleet';
import { runDirectLoop } from './direct-loop';

export interface SleepingOptions {
  api: ServiceProcess;
  /** A worker that has run nothing yet, so the fleet's figure is its own. */
  worker: ServiceProcess;
  /** The Temporal dev server's process, for the CPU a dispatch's start costs. */
  temporalPid: number;
  gh: FakeGitHub;
  app: FakeGithubApp;
  adminToken: string;
  databaseUrl: string;
  env: Record<string, string>;
  sleepers: number;
  /** New dispatches per second and for how long, while the sleepers are held. */
  firstTokenRate: number;
  firstTokenSeconds: number;
  directCycles: number;
  log: (line: string) => void;
}

interface Dispatch {
  name: string;
  id: string;
}

export async function runSleeping(o: SleepingOptions) {
  const lifetime = o.gh.tokenLifetimeSeconds;
  const containers = await FakeContainerHost.start({ acceptBeforeBearer: true });
  const firstCount = Math.round(o.firstTokenRate * o.firstTokenSeconds);
  const rigs = await createRigs(o, Math.ceil((o.sleepers + firstCount) / 10), 'sleep');
  const start = async (name: string, rig: string): Promise<Dispatch> => {
    const url = containers.add(name);
    const d = await call<{ dispatch_id: string; container_token: string }>(o, 'POST', `/api/rigs/${rig}/dispatches`, {
      container_url: url,
    });
    containers.setBearer(name, d.container_token);
    return { name, id: d.dispatch_id };
  };
  const all: Dispatch[] = [];
  try {
    // One dispatch first, so the worker's workflow sandbox exists before the baseline is taken.
    const warm = await start('warmup', rigs[0]);
    await containers.waitForPush(warm.name, (p) => p.generation === 1, 60_000);
    await call(o, 'POST', `/api/dispatches/${warm.id}/stop`);
    const rssBefore = await settledRss(o.worker, o.log);

    // In two halves, with the RSS settled after each: the second half's growth is what a sleeping
    // dispatch costs at the margin, without the worker's one-off growth from its first burst.
    const half = Math.floor(o.sleepers / 2);
    let startSeconds = 0;
    let allFirstSeconds = 0;
    const rss: number[] = [];
    for (const [from, to] of [
      [0, half],
      [half, o.sleepers],
    ]) {
      o.log(`starting dispatches ${from + 1}-${to} of ${o.sleepers} with ${lifetime} s tokens`);
      const started = performance.now();
      const batch = await pool(
        Array.from({ length: to - from }, (_, i) => from + i),
        64,
        (i) => start(`s${i}`, rigs[i % rigs.length]),
      );
      all.push(...batch);
      startSeconds += (performance.now() - started) / 1000;
      await Promise.all(batch.map((d) => containers.waitForPush(d.name, (p) => p.generation === 1, 300_000)));
      allFirstSeconds += (performance.now() - started) / 1000;
      rss.push(await settledRss(o.worker, o.log, `worker with ${to} sleeping`));
    }
    const sleepers = all.slice(0, o.sleepers);
    o.log(`all ${o.sleepers} hold a token after ${allFirstSeconds.toFixed(1)} s; they sleep until their refresh`);
    const [rssHalf, rssAfter] = rss;
    const sleeping = {
      dispatches: o.sleepers,
      token_lifetime_s: lifetime,
      start_rate_per_s: o.sleepers / startSeconds,
      all_first_tokens_s: allFirstSeconds,
      worker_rss_before_mb: rssBefore,
      worker_rss_half_mb: rssHalf,
      worker_rss_after_mb: rssAfter,
      worker_rss_per_1000_mb: ((rssAfter - rssBefore) / o.sleepers) * 1000,
      /** The second half's growth: the cost of one more sleeping dispatch. */
      worker_rss_marginal_per_1000_mb: ((rssAfter - rssHalf) / (o.sleepers - half)) * 1000,
    };

    // New dispatches arrive steadily (open loop: each is sent at its time whatever the others do).
    o.log(`${firstCount} new dispatches at ${o.firstTokenRate}/s while ${o.sleepers} sleep`);
    const interval = 1000 / o.firstTokenRate;
    const t0 = performance.now() + 100;
    const latencies: number[] = [];
    const cpuBefore = cpuReading(o);
    let firstSent = Infinity;
    let lastSent = 0;
    const arrivals = Array.from({ length: firstCount }, async (_, i) => {
      await new Promise((r) => setTimeout(r, Math.max(0, t0 + i * interval - performance.now())));
      const sentAt = Date.now();
      firstSent = Math.min(firstSent, performance.now());
      lastSent = Math.max(lastSent, performance.now());
      const d = await start(`f${i}`, rigs[(o.sleepers + i) % rigs.length]);
      all.push(d);
      const push = await containers.waitForPush(d.name, (p) => p.generation === 1, 120_000);
      latencies.push((push.receivedAt - sentAt) / 1000);
    });
    await Promise.all(arrivals);
    // Each new dispatch mints once before its first push: the window's CPU per mint is per start, to
    // the first token, by process (the continue-as-new onto the sleeping queue may follow it).
    const cpu = cpuUse(cpuBefore, cpuReading(o), firstCount);
    const first_token = {
      dispatches: firstCount,
      /** Measured from the send times: what the API was offered. */
      rate_per_s: (firstCount - 1) / Math.max(1e-9, (lastSent - firstSent) / 1000),
      sleeping_held: o.sleepers,
      p50_s: percentile(latencies, 50),
      p99_s: percentile(latencies, 99),
      max_s: Math.max(...latencies),
      cpu,
    };
    o.log(`first token p50 ${first_token.p50_s.toFixed(2)} s, p99 ${first_token.p99_s.toFixed(2)} s`);

    const direct = await runDirectLoop({
      env: o.env,
      apiPid: o.api.child.pid!,
      dispatchIds: sleepers.map((d) => d.id),
      cycles: o.directCycles,
      concurrency: 20,
      log: o.log,
    });
    return { sleeping, first_token, direct };
  } finally {
    const stopping = performance.now();
    await pool(all, 64, (d) => call(o, 'POST', `/api/dispatches/${d.id}/stop`).catch(() => undefined));
    const stopped = await waitUntilStopped(
      o.databaseUrl,
      all.map((d) => d.id),
    );
    o.log(`stopped ${stopped}/${all.length} in ${((performance.now() - stopping) / 1000).toFixed(1)} s`);
    await containers.close();
  }
}
