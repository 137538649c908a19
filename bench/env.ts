// The benchmark's world: its own Temporal dev server and Postgres database, the fakes, and the
// service as real processes (ROLE=api and ROLE=worker) so their cost is measured where it lands.
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { migrate } from '../lib/migrate';
import { SERVICE_PROCESS_ENV } from '../lib/process-tuning';
import { freePort, PROJECT_ROOT, resolveTemporalCli, startDevServer, type DevServer } from '../scripts/temporal-cli';

export const BENCH_DB = 'repo_connect_bench';

export interface ServiceProcess {
  child: ChildProcess;
  url: string;
  metricsUrl?: string;
  output(): string;
  rssMb(): number;
  stop(): Promise<void>;
}

/** Recreates the bench database and applies migrations. */
export async function benchDatabase(serverUrl = 'postgresql://postgres@127.0.0.1:5432/postgres'): Promise<string> {
  const admin = new Client({ connectionString: serverUrl });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS "${BENCH_DB}" WITH (FORCE)`);
  await admin.query(`CREATE DATABASE "${BENCH_DB}"`);
  await admin.end();
  const url = new URL(serverUrl);
  url.pathname = `/${BENCH_DB}`;
  await migrate(url.toString());
  return url.toString();
}

/** A headless in-memory Temporal dev server on a free port. */
export async function benchTemporal(): Promise<DevServer> {
  const cli = await resolveTemporalCli(process.env, (l) => process.stderr.write(`${l}\n`));
  return startDevServer({ cli, port: await freePort() });
}

/** Resident set size of a process in MB, from /proc. */
export function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return kb / 1024;
}

/** CPU time (user + system) a process has used so far, in seconds, from /proc (USER_HZ is 100 on Linux). */
export function cpuSeconds(pid: number): number {
  // Fields after the command name, which is in parentheses and may hold spaces: utime is the 12th, stime the 13th.
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/**
 * CPU seconds of Postgres's processes that work for `database`, per process id: its backends and the
 * server's own (postmaster, WAL writer, checkpointer, …), not the backends of other databases on the
 * same server (a test suite running beside the bench). Compare two readings with `postgresCpuBetween`.
 */
export function postgresCpuReading(database: string): Map<number, number> {
  const out = new Map<number, number>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const cmd = readFileSync(`/proc/${name}/cmdline`, 'utf8').replace(/\0/g, ' ');
      const title = /^postgres: (?:[^:]+: )?(.*)$/.exec(cmd)?.[1];
      const isPostmaster = /\/postgres(ql)?\b.* -D /.test(cmd);
      // A backend's title is "<user> <database> <host>(<port>) <state>"; the server's own processes have no host.
      const backend = title === undefined ? null : /^\S+ (\S+) [\d.:a-f[\]]+\(\d+\)/.exec(title);
      if (isPostmaster || (title !== undefined && (backend === null || backend[1] === database)))
        out.set(Number(name), cpuSeconds(Number(name)));
    } catch {
      // the process ended while being read
    }
  }
  return out;
}

/** CPU seconds used between two readings (a backend that ended in between is left out). */
export function postgresCpuBetween(a: Map<number, number>, b: Map<number, number>): number {
  let sum = 0;
  for (const [pid, cpu] of b) sum += cpu - (a.get(pid) ?? 0);
  return sum;
}

/** The machine's CPU time so far, all cores together, in seconds: busy and in all. */
export function machineCpuSeconds(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]; // cpu  user nice system idle iowait irq softirq steal …
  const [user, nice, system, idle, iowait, irq, softirq, steal] = line.trim().split(/\s+/).slice(1, 9).map(Number);
  const busy = user + nice + system + irq + softirq + steal;
  return { busy: busy / 100, total: (busy + idle + iowait) / 100 };
}

/** Runs bin/repo-connect.ts as a child process with `env`; resolves once it says it is ready. */
export async function startService(role: 'api' | 'worker', env: Record<string, string>): Promise<ServiceProcess> {
  const port = await freePort();
  const metricsPort = await freePort();
  // One node process (tsx as a loader, not its CLI), so RSS and profiles are the service's own.
  // Profiling hooks: BENCH_API_NODE_ARGS / BENCH_WORKER_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof".
  const extra = role === 'api' ? process.env.BENCH_API_NODE_ARGS : process.env.BENCH_WORKER_NODE_ARGS;
  const nodeArgs = extra ? extra.split(' ') : [];
  const child = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', join(PROJECT_ROOT, 'bin', 'repo-connect.ts')], {
    cwd: PROJECT_ROOT,
    env: {
      PATH: process.env.PATH,
      ...SERVICE_PROCESS_ENV, // as the image starts it
      NODE_ENV: 'production',
      ROLE: role,
      PORT: String(port),
      WORKER_METRICS_PORT: String(metricsPort),
      PUBLIC_URL: `http://127.0.0.1:${port}`,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // Never outlive the bench, even when it crashes.
  process.once('exit', () => child.kill('SIGKILL'));
  let out = '';
  child.stdout!.on('data', (b: Buffer) => (out = (out + b.toString()).slice(-20_000)));
  child.stderr!.on('data', (b: Buffer) => (out = (out + b.toString()).slice(-20_000)));
  // Ready when it answers: /healthz for the API, the worker's own /metrics for a worker.
  const probe = role === 'api' ? `http://127.0.0.1:${port}/healthz` : `http://127.0.0.1:${metricsPort}/metrics`;
  const deadline = Date.now() + 120_000;
  while (
    !(await fetch(probe)
      .then((r) => r.ok)
      .catch(() => false))
  ) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`${role} did not start: ${out}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  const pid = child.pid!;
  return {
    child,
    url: `http://127.0.0.1:${port}`,
    metricsUrl: role === 'worker' ? `http://127.0.0.1:${metricsPort}/metrics` : undefined,
    output: () => out,
    rssMb: () => rssMb(pid),
    async stop() {
      if (child.exitCode !== null) return;
      child.kill('SIGINT'); // SIGINT lets --cpu-prof write its profile
      await new Promise((r) => child.once('exit', r));
    },
  };
}

/** The service environment shared by the bench's processes. */
export function serviceEnv(
  base: { databaseUrl: string; temporalAddress: string; taskQueue: string },
  extra: Record<string, string>,
): Record<string, string> {
  return {
    DATABASE_URL: base.databaseUrl,
    TEMPORAL_ADDRESS: base.temporalAddress,
    TEMPORAL_TASK_QUEUE: base.taskQueue,
    ADMIN_API_TOKEN: randomBytes(32).toString('hex'), // the bench runs the service with NODE_ENV=production
    // ... where pushes over plain http need a host the allow-list names: the fake containers' address.
    CONTAINER_URL_ALLOW: '127.0.0.1',
    SECRETS_KEY: randomBytes(32).toString('base64'),
    LOG_LEVEL: 'warn',
    ...extra,
  };
}

/** p-th percentile (0..100) of `values` (nearest rank). */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank];
}

/** Runs `fn` over `items` with at most `limit` in flight. */
export async function pool<T, R>(items: T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        results[i] = await fn(items[i], i);
      }
    }),
  );
  return results;
}

export type CpuReading = ReturnType<typeof cpuReading>;

/** The processes a fleet's CPU is read from. */
export interface CpuSubjects {
  worker: ServiceProcess;
  api: ServiceProcess;
  temporalPid: number;
  databaseUrl: string;
}

export function cpuReading(o: CpuSubjects) {
  return {
    at: Date.now(),
    worker: cpuSeconds(o.worker.child.pid!),
    api: cpuSeconds(o.api.child.pid!),
    temporal: cpuSeconds(o.temporalPid),
    postgres: postgresCpuReading(new URL(o.databaseUrl).pathname.slice(1)),
    /** The bench process: the fakes (GitHub, containers) and the bench's own bookkeeping. */
    bench: process.cpuUsage(),
    machine: machineCpuSeconds(),
  };
}

/**
 * Where the machine's CPU went between two readings, per mint in that window (the loop's refreshes,
 * or the first tokens of new dispatches): on a saturated machine lateness is queueing, and these
 * figures tell it apart from a slow token path. `rest` is Postgres, the fakes and the bench itself.
 */
export function cpuUse(a: CpuReading, b: CpuReading, mints: number) {
  const perMint = (seconds: number) => (seconds * 1000) / Math.max(1, mints);
  const busy = b.machine.busy - a.machine.busy;
  const worker = b.worker - a.worker;
  const temporal = b.temporal - a.temporal;
  const api = b.api - a.api;
  const postgres = postgresCpuBetween(a.postgres, b.postgres);
  const benchUs = process.cpuUsage(a.bench);
  const bench = (benchUs.user + benchUs.system) / 1e6;
  return {
    window_s: (b.at - a.at) / 1000,
    mints,
    machine_busy_fraction: busy / Math.max(1e-9, b.machine.total - a.machine.total),
    worker_ms_per_mint: perMint(worker),
    temporal_ms_per_mint: perMint(temporal),
    api_ms_per_mint: perMint(api),
    rest_ms_per_mint: perMint(Math.max(0, busy - worker - temporal - api)),
    postgres_ms_per_mint: perMint(postgres),
    bench_ms_per_mint: perMint(bench),
    /** Every process of the loop: worker, Temporal, API, Postgres (this database) and the fakes; not other work on the machine. */
    all_ms_per_mint: perMint(worker + temporal + api + postgres + bench),
    machine_ms_per_mint: perMint(busy),
  };
}
