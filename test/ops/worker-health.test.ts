// A worker-only process's health as its container probe sees it (scripts/healthcheck.mjs on
// GET /healthz of the metrics port): healthy while its workers run and Postgres and Temporal
// answer, unhealthy while Postgres is away (its activities could store nothing), healthy again
// when Postgres is back. The real entry point, its Postgres reached through a proxy that goes down.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { eventually, startHarness, type Harness } from '../helpers/harness';
import { PgProxy } from '../helpers/pg-proxy';
import { testDatabaseUrl } from '../helpers/test-env';
import { spawnService, type ServiceProcess } from './service-process';
import { PROJECT_ROOT } from '../../scripts/temporal-cli';

let h: Harness;
let proxy: PgProxy;
let worker: ServiceProcess;

beforeAll(async () => {
  // In-process only for its configuration: it runs no worker.
  h = await startHarness({ worker: false });
  proxy = await PgProxy.start(testDatabaseUrl());
  worker = await spawnService({ role: 'worker', config: h.core.config, env: { DATABASE_URL: proxy.url }, label: 'worker-health' });
}, 180_000);

afterAll(async () => {
  worker?.kill('SIGKILL');
  await proxy?.close();
  await h?.close();
});

const healthUrl = () => worker.metricsUrl!.replace(/\/metrics$/, '/healthz');
async function health(): Promise<{ status: number; body: Record<string, string> }> {
  const res = await fetch(healthUrl());
  return { status: res.status, body: (await res.json()) as Record<string, string> };
}
/**
 * Exit code of the container's probe aimed at the worker. Run without blocking: the worker reaches
 * Postgres through the proxy in this process.
 */
function probe(): Promise<number | null> {
  const env = { PATH: process.env.PATH, ROLE: 'worker', WORKER_METRICS_PORT: new URL(healthUrl()).port };
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [join(PROJECT_ROOT, 'scripts', 'healthcheck.mjs')], { env, timeout: 10_000 });
    child.once('exit', (code) => resolve(code));
  });
}

it('answers healthy while its workers run and Postgres and Temporal answer, and unhealthy while Postgres is away', async () => {
  expect(await eventually(async () => ((await health()).status === 200 ? health() : null), 20_000, 'a healthy worker')).toEqual({
    status: 200,
    body: { postgres: 'ok', temporal: 'ok', workers: 'ok' },
  });
  expect(await probe()).toBe(0);

  proxy.down();
  const down = await eventually(async () => {
    const r = await health();
    return r.status === 503 ? r : null;
  }, 10_000);
  expect(down.body).toEqual({ postgres: 'down', temporal: 'ok', workers: 'ok' });
  expect(await probe()).toBe(1);

  proxy.up();
  await eventually(async () => (await health()).status === 200, 20_000, 'healthy again');
  expect(await probe()).toBe(0);
});
