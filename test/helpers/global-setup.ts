// Starts what the whole suite shares: a fresh test database with migrations applied, one Temporal
// dev server (in memory, headless, on a free port; see suite-temporal.ts) and the workflow bundle
// built once.
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from 'pg';
import { bundleWorkflowCode } from '@temporalio/worker';
import { workflowBundleOptions } from '../../activities/workflow-bundle';
import { migrate } from '../../lib/migrate';
import { PROJECT_ROOT } from '../../scripts/temporal-cli';
import { startSuiteTemporal, type SuiteTemporal } from './suite-temporal';
import { testServerUrl } from './test-env';

declare global {
  var __SUITE_TEMPORAL__: SuiteTemporal | undefined;
}

/** Creates this run's database and drops those of earlier runs whose process is gone. */
async function createRunDatabase(): Promise<string> {
  const server = new URL(testServerUrl());
  server.pathname = '/postgres';
  const admin = new Client({ connectionString: server.toString() });
  await admin.connect();
  try {
    const { rows } = await admin.query<{ datname: string }>("SELECT datname FROM pg_database WHERE datname LIKE 'repo_connect_test_%'");
    for (const { datname } of rows) {
      const pid = Number(datname.split('_').pop());
      if (Number.isInteger(pid) && !alive(pid)) await admin.query(`DROP DATABASE IF EXISTS "${datname}" WITH (FORCE)`);
    }
    const name = `repo_connect_test_${process.pid}`;
    await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    await admin.query(`CREATE DATABASE "${name}"`);
    const url = new URL(testServerUrl());
    url.pathname = `/${name}`;
    return url.toString();
  } finally {
    await admin.end();
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** This run's log directory (global teardown scans it for tokens); drops those of dead runs. */
function createRunLogDir(root: string): string {
  if (existsSync(root)) {
    for (const name of readdirSync(root)) {
      if (/^\d+$/.test(name) && !alive(Number(name))) rmSync(join(root, name), { recursive: true, force: true });
    }
  }
  const dir = join(root, String(process.pid));
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  return dir;
}

export default async function globalSetup(): Promise<void> {
  const started = Date.now();
  const dbUrl = await createRunDatabase();
  process.env.TEST_DATABASE_URL = dbUrl;
  await migrate(dbUrl);

  const cacheDir = join(PROJECT_ROOT, '.cache');
  mkdirSync(cacheDir, { recursive: true });
  process.env.TEST_LOG_DIR = createRunLogDir(join(cacheDir, 'test-logs'));
  const [temporal, bundle] = await Promise.all([startSuiteTemporal(), bundleWorkflowCode(workflowBundleOptions())]);
  globalThis.__SUITE_TEMPORAL__ = temporal;
  const bundlePath = join(cacheDir, `workflow-bundle-${process.pid}.js`);
  writeFileSync(bundlePath, bundle.code);

  // Test workers are forked after this, so they inherit these.
  process.env.TEST_TEMPORAL_ADDRESS = temporal.env.address;
  process.env.TEST_WORKFLOW_BUNDLE = bundlePath;
  process.stderr.write(
    `\n[setup] postgres ${new URL(dbUrl).pathname.slice(1)}, temporal ${temporal.env.address}, ready in ${Date.now() - started} ms\n`,
  );
}
