import { rmSync } from 'node:fs';
import { Client } from 'pg';
import { testServerUrl } from './test-env';

export default async function globalTeardown(): Promise<void> {
  await globalThis.__TEMPORAL_DEV_SERVER__?.stop();
  const url = process.env.TEST_DATABASE_URL;
  if (url) {
    const admin = new Client({ connectionString: testServerUrl() });
    await admin.connect();
    await admin.query(`DROP DATABASE IF EXISTS "${new URL(url).pathname.slice(1)}" WITH (FORCE)`).catch(() => undefined);
    await admin.end();
  }
  if (process.env.TEST_WORKFLOW_BUNDLE) rmSync(process.env.TEST_WORKFLOW_BUNDLE, { force: true });
}
