// The worker's workflow bundle: built once per version of workflows/ in a separate process and
// cached under .cache/, so worker processes start fast and without webpack in their memory.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const ROOT = resolve(__dirname, '..');

/** Content hash of workflows/ and the workflow SDK version: a new bundle when either changes. */
export function workflowSourceHash(): string {
  const h = createHash('sha256');
  const dir = join(ROOT, 'workflows');
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.ts')).sort()) h.update(f).update(readFileSync(join(dir, f)));
  h.update(JSON.parse(readFileSync(require.resolve('@temporalio/workflow/package.json'), 'utf8')).version);
  return h.digest('hex').slice(0, 16);
}

/** Path of an up-to-date bundle, building it first when missing. */
export function prebuiltWorkflowBundle(cacheDir = join(ROOT, '.cache')): { codePath: string } {
  const codePath = join(cacheDir, `workflow-bundle-${workflowSourceHash()}.js`);
  if (!existsSync(codePath)) {
    mkdirSync(cacheDir, { recursive: true });
    const r = spawnSync(process.execPath, [require.resolve('tsx/cli'), join(ROOT, 'scripts', 'bundle-workflows.ts'), codePath], { stdio: ['ignore', 'inherit', 'inherit'] });
    if (r.status !== 0 || !existsSync(codePath)) throw new Error(`could not bundle the workflows (exit ${r.status})`);
  }
  return { codePath };
}
