// `npm run replay:record`: records the replay corpus again from the workflow code in this checkout.
// Runs test/replay/record-histories.scenarios.ts through jest (so the suite's global setup gives it
// a database, a dev server and the workflow bundle) and writes one JSON file per path into
// test/replay/histories/<date>-<hash of workflows/>/. A recording of the same workflow code is
// replaced; recordings of earlier code stay, because runs started on it may still be live.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { workflowSourceHash } from '../activities/workflow-bundle';
import { PROJECT_ROOT } from './temporal-cli';

const HISTORIES = join(PROJECT_ROOT, 'test', 'replay', 'histories');

function git(...args: string[]): string {
  const r = spawnSync('git', args, { cwd: PROJECT_ROOT, encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : '';
}

function main(): number {
  const hash = workflowSourceHash();
  const at = new Date().toISOString();
  const dirty = git('status', '--porcelain', '--', 'workflows') !== '';
  const commit = `${git('rev-parse', 'HEAD') || 'unknown'}${dirty ? '+uncommitted workflows/' : ''}`;
  const sdk = (JSON.parse(readFileSync(require.resolve('@temporalio/workflow/package.json'), 'utf8')) as { version: string }).version;
  const name = `${at.slice(0, 10)}-${hash}`;
  const tmp = join(HISTORIES, `.recording-${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });

  process.stdout.write(`recording the replay corpus for workflows/ ${hash} (${commit}) into test/replay/histories/${name}/\n`);
  const jest = spawnSync(
    process.execPath,
    [require.resolve('jest/bin/jest'), '--runInBand', '--testMatch', '**/test/replay/record-histories.scenarios.ts'],
    {
      cwd: PROJECT_ROOT,
      stdio: 'inherit',
      env: { ...process.env, REPLAY_RECORD_DIR: tmp, REPLAY_RECORD_META: JSON.stringify({ at, commit, workflowSourceHash: hash, sdk }) },
    },
  );
  if (jest.status !== 0) {
    rmSync(tmp, { recursive: true, force: true });
    process.stderr.write('recording failed: nothing was written\n');
    return 1;
  }
  // Same workflow code recorded before (another day): this recording replaces it.
  for (const old of existsSync(HISTORIES) ? readdirSync(HISTORIES) : []) {
    if (old.endsWith(`-${hash}`)) rmSync(join(HISTORIES, old), { recursive: true, force: true });
  }
  renameSync(tmp, join(HISTORIES, name));
  process.stdout.write(`wrote ${readdirSync(join(HISTORIES, name)).length} files to test/replay/histories/${name}/\n`);
  return 0;
}

process.exit(main());
