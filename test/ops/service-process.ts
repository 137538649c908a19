// Runs the real entry point (bin/repo-connect.ts) as its own process the way the container image
// does (`node --import tsx`, with the image's process settings), so signals reach the service
// directly. Output goes to the run's log directory too, so the teardown token scan covers these
// processes.
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import type { Config } from '../../lib/config';
import { SERVICE_PROCESS_ENV } from '../../lib/process-tuning';
import { freePort, PROJECT_ROOT } from '../../scripts/temporal-cli';
import { eventually } from '../helpers/harness';
import { appendRunLog, logFileName } from '../helpers/test-logs';

export interface ServiceProcess {
  child: ChildProcess;
  role: 'all' | 'api' | 'worker';
  /** API base URL (roles all and api). */
  url?: string;
  /** The worker-only process's own /metrics. */
  metricsUrl?: string;
  output(): string;
  /** Resolves when the process has exited, with its code and how long after `since` that was. */
  exited(since?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }>;
  kill(signal?: NodeJS.Signals): void;
}

export interface SpawnOptions {
  role: 'all' | 'api' | 'worker';
  /** Shared settings (database, Temporal, task queue, secrets) from a harness's config. */
  config: Config;
  /** Extra environment: provider URLs and app keys, lifetimes. */
  env?: Record<string, string>;
  label: string;
}

/** Starts the service and waits until it says it is listening / running. */
export async function spawnService(opts: SpawnOptions): Promise<ServiceProcess> {
  const c = opts.config;
  const port = opts.role === 'worker' ? 0 : await freePort();
  const metricsPort = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', join(PROJECT_ROOT, 'bin', 'repo-connect.ts')], {
    cwd: PROJECT_ROOT,
    env: {
      PATH: process.env.PATH,
      ...SERVICE_PROCESS_ENV, // as the image starts it
      NODE_ENV: 'test',
      ROLE: opts.role,
      LOG_LEVEL: 'info',
      HOST: '127.0.0.1',
      PORT: String(port),
      WORKER_METRICS_PORT: String(metricsPort),
      DATABASE_URL: c.databaseUrl,
      TEMPORAL_ADDRESS: c.temporal.address,
      TEMPORAL_NAMESPACE: c.temporal.namespace,
      TEMPORAL_TASK_QUEUE: c.temporal.taskQueue,
      ADMIN_API_TOKEN: c.adminApiToken,
      SECRETS_KEY: c.secretsKeys[0].toString('base64'),
      TOKEN_REFRESH_MARGIN_SECONDS: String(c.tokenRefreshMarginSeconds),
      REFRESH_JITTER_MAX_SECONDS: String(c.refreshJitterMaxSeconds),
      PROVIDER_TIMEOUT_SECONDS: String(c.providerTimeoutMs / 1000),
      ...opts.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const file = logFileName(`process-${opts.label}`);
  let out = '';
  const collect = (b: Buffer) => {
    const text = b.toString();
    out = (out + text).slice(-200_000);
    appendRunLog(file, text);
  };
  child.stdout!.on('data', collect);
  child.stderr!.on('data', collect);
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal, at: Date.now() }));
  });

  const ready = () =>
    (opts.role !== 'worker' ? out.includes('"api listening"') : true) && (opts.role !== 'api' ? out.includes('"worker running"') : true);
  // Worker roles bundle the workflow code at start: tens of seconds on a busy two-core machine.
  await eventually(async () => ready() || child.exitCode !== null, 120_000, `${opts.label} to start`);
  if (child.exitCode !== null) throw new Error(`${opts.label} exited (${child.exitCode}) at start:\n${out.slice(-4000)}`);

  return {
    child,
    role: opts.role,
    url: opts.role === 'worker' ? undefined : `http://127.0.0.1:${port}`,
    metricsUrl: opts.role === 'worker' ? `http://127.0.0.1:${metricsPort}/metrics` : undefined,
    output: () => out,
    async exited(since = Date.now()) {
      const { code, signal, at } = await exit;
      return { code, signal, ms: at - since };
    },
    kill(signal = 'SIGKILL') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    },
  };
}
