import { rmSync } from 'node:fs';
import { Client } from 'pg';
import { testServerUrl } from './test-env';
import { issuedTokenCount, scanRunLogs } from './test-logs';

export default async function globalTeardown(): Promise<void> {
  await globalThis.__SUITE_TEMPORAL__?.stop();
  const url = process.env.TEST_DATABASE_URL;
  if (url) {
    const admin = new Client({ connectionString: testServerUrl() });
    await admin.connect();
    await admin.query(`DROP DATABASE IF EXISTS "${new URL(url).pathname.slice(1)}" WITH (FORCE)`).catch(() => undefined);
    await admin.end();
  }
  if (process.env.TEST_WORKFLOW_BUNDLE) rmSync(process.env.TEST_WORKFLOW_BUNDLE, { force: true });
  scanLogsForTokens();
}

/** Fails the run when any token a fake issued appears in any log line the run wrote. */
function scanLogsForTokens(): void {
  const dir = process.env.TEST_LOG_DIR;
  if (!dir) return;
  const leaks = scanRunLogs(dir);
  if (leaks.length === 0) {
    process.stderr.write(`[teardown] log scan: none of ${issuedTokenCount(dir)} issued tokens appears in the run's logs\n`);
    rmSync(dir, { recursive: true, force: true });
    return;
  }
  // The directory stays for inspection; the message names places and fingerprints, never tokens.
  const places = leaks.slice(0, 20).map((l) => `  ${l.file}:${l.line} (token sha256 ${l.fingerprint}…)`);
  throw new Error(`issued tokens found in ${leaks.length} log line(s) under ${dir}:\n${places.join('\n')}`);
}
