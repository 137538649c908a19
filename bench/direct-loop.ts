// The physical floor of a refresh on this machine: the worker's own mint activity (mint + check
// call + store + push) called directly in a loop, without Temporal, in the bench process. Its CPU
// per cycle, all processes of the machine together, is what the token loop's is compared with.
import { loadConfig } from '../lib/config';
import { createCore } from '../lib/core';
import { createLogger } from '../lib/logger';
import { tokenActivitiesFrom } from '../activities/worker';
import { cpuSeconds, machineCpuSeconds, pool, postgresCpuBetween, postgresCpuReading } from './env';

export interface DirectLoopOptions {
  /** The service environment the worker runs with (same database, keys, GitHub). */
  env: Record<string, string>;
  /** The API process: it drops its cached copy of every lease written (NOTIFY), as in the loop. */
  apiPid: number;
  /** Live dispatches whose workflows sleep meanwhile (hour-long tokens), each with a container that answers. */
  dispatchIds: string[];
  cycles: number;
  /** Mints in flight at once. */
  concurrency: number;
  log: (line: string) => void;
}

/** Runs `cycles` mints round-robin over the dispatches; returns the CPU of all processes per cycle. */
export async function runDirectLoop(o: DirectLoopOptions) {
  const config = loadConfig({ ...o.env, ROLE: 'worker', NODE_ENV: 'production', PUBLIC_URL: 'http://127.0.0.1:1' });
  const core = await createCore(config, { logger: createLogger('warn') });
  const { mintLease } = tokenActivitiesFrom(core);
  const runId = crypto.randomUUID();
  let pushed = 0;
  const mint = async (i: number, phase: string) => {
    const lease = await mintLease({
      dispatchId: o.dispatchIds[i % o.dispatchIds.length],
      mintKey: `direct-${runId}:${phase}:${i}`,
      reason: 'direct',
      scheduledFor: null,
      push: true,
    });
    if (lease.pushed === 'acknowledged' && !lease.reused) pushed += 1;
  };
  try {
    // Warm-up: connections, JIT, the app's JWT.
    await pool(
      Array.from({ length: Math.min(50, o.cycles) }, (_, i) => i),
      o.concurrency,
      (i) => mint(i, 'warm'),
    );
    pushed = 0;
    const database = new URL(o.env.DATABASE_URL).pathname.slice(1);
    const before = machineCpuSeconds();
    const own = process.cpuUsage();
    const apiBefore = cpuSeconds(o.apiPid);
    const pgBefore = postgresCpuReading(database);
    const started = performance.now();
    await pool(
      Array.from({ length: o.cycles }, (_, i) => i),
      o.concurrency,
      (i) => mint(i, 'measured'),
    );
    const seconds = (performance.now() - started) / 1000;
    const after = machineCpuSeconds();
    const ownUs = process.cpuUsage(own);
    const api = cpuSeconds(o.apiPid) - apiBefore;
    const postgres = postgresCpuBetween(pgBefore, postgresCpuReading(database));
    const busy = after.busy - before.busy;
    const bench = (ownUs.user + ownUs.system) / 1e6;
    const perCycle = (seconds: number) => (seconds * 1000) / o.cycles;
    o.log(`direct loop: ${o.cycles} mint + check + store + push in ${seconds.toFixed(1)} s, ${pushed} pushed`);
    return {
      cycles: o.cycles,
      concurrency: o.concurrency,
      pushed,
      window_s: seconds,
      cycles_per_s: o.cycles / seconds,
      machine_busy_fraction: busy / Math.max(1e-9, after.total - before.total),
      /** The bench process: the direct path itself plus the fakes it calls. */
      bench_ms_per_cycle: perCycle(bench),
      api_ms_per_cycle: perCycle(api),
      postgres_ms_per_cycle: perCycle(postgres),
      /** The processes this path needs (the idle worker and Temporal server are left out). */
      all_ms_per_cycle: perCycle(bench + api + postgres),
      machine_ms_per_cycle: perCycle(busy),
    };
  } finally {
    await core.close();
  }
}
