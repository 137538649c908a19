// Starts what the whole suite shares: a fresh test database with migrations applied, one Temporal
// dev server (in memory, headless, on a free port) and the workflow bundle built once.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from 'pg';
import { bundleWorkflowCode } from '@temporalio/worker';
import { migrate } from '../../lib/migrate';
import { freePort, PROJECT_ROOT, resolveTemporalCli, startDevServer, type DevServer } from '../../scripts/temporal-cli';
import { testDatabaseUrl } from './test-env';

declare global {
  // eslint-disable-next-line no-var
  var __TEMPORAL_DEV_SERVER__: DevServer | undefined;
}

async function recreateDatabase(url: string): Promise<void> {
  const target = new URL(url);
  const name = target.pathname.slice(1);
  if (!/^[a-z0-9_]+_test$/.test(name)) throw new Error(`refusing to recreate ${name}: test databases end in _test`);
  target.pathname = '/postgres';
  const admin = new Client({ connectionString: target.toString() });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    await admin.query(`CREATE DATABASE "${name}"`);
  } finally {
    await admin.end();
  }
}

export default async function globalSetup(): Promise<void> {
  const started = Date.now();
  const dbUrl = testDatabaseUrl();
  await recreateDatabase(dbUrl);
  await migrate(dbUrl);

  const cacheDir = join(PROJECT_ROOT, '.cache');
  mkdirSync(cacheDir, { recursive: true });
  const [server, bundle] = await Promise.all([
    (async () => {
      const cli = await resolveTemporalCli(process.env, (l) => process.stderr.write(`${l}\n`));
      return startDevServer({ cli, port: await freePort() });
    })(),
    bundleWorkflowCode({ workflowsPath: require.resolve('../../workflows'), logger: quietLogger }),
  ]);
  globalThis.__TEMPORAL_DEV_SERVER__ = server;
  const bundlePath = join(cacheDir, `workflow-bundle-${process.pid}.js`);
  writeFileSync(bundlePath, bundle.code);

  // Test workers are forked after this, so they inherit these.
  process.env.TEST_TEMPORAL_ADDRESS = server.address;
  process.env.TEST_WORKFLOW_BUNDLE = bundlePath;
  process.stderr.write(`\n[setup] postgres ${new URL(dbUrl).pathname.slice(1)}, temporal ${server.address}, ready in ${Date.now() - started} ms\n`);
}

const quietLogger = {
  log: () => undefined,
  trace: () => undefined,
  debug: () => undefined,
  info: () => undefined,
  warn: (m: string) => process.stderr.write(`[bundle] ${m}\n`),
  error: (m: string) => process.stderr.write(`[bundle] ${m}\n`),
};
