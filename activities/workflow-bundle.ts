// The worker's workflow bundle: built once per version of workflows/ in a separate process and
// cached under .cache/, so worker processes start fast and without webpack in their memory.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const ROOT = resolve(__dirname, '..');
const WORKFLOWS_PATH = join(ROOT, 'workflows', 'index.ts');

/**
 * What every bundle of workflows/ is built with (the worker's cached bundle and the tests' own).
 *
 * With a reused V8 context the SDK instantiates every module a workflow imports once per run, unless
 * the module was preloaded into the context before any run existed. Our workflow modules and the
 * SDK's public entry hold no per-run state: they keep constants (signal, query and update
 * definitions, activity proxies, search attribute keys) and read the current run from the SDK's
 * activator at call time. Preloaded, they are instantiated (and deep-frozen) once per context instead
 * of once per cached run (README, "Performance"). State at module level would be shared between
 * runs, so lint refuses it in workflows/ (eslint.config.mjs).
 */
export function workflowBundleOptions(): { workflowsPath: string; preloadModules: string[]; logger: typeof bundleLogger } {
  return { workflowsPath: WORKFLOWS_PATH, preloadModules: ['@temporalio/workflow', WORKFLOWS_PATH], logger: bundleLogger };
}

const quiet = () => undefined;
const toStderr = (message: string) => void process.stderr.write(`[bundle] ${message}\n`);
/** webpack's progress is noise; its warnings and errors go to stderr. */
const bundleLogger = { log: quiet, trace: quiet, debug: quiet, info: quiet, warn: toStderr, error: toStderr };

/** Content hash of workflows/, the bundle options and the workflow SDK version: a new bundle when any changes. */
export function workflowSourceHash(): string {
  const h = createHash('sha256');
  h.update(JSON.stringify(workflowBundleOptions().preloadModules.map((m) => m.replace(ROOT, ''))));
  const dir = join(ROOT, 'workflows');
  for (const f of readdirSync(dir)
    .filter((n) => n.endsWith('.ts'))
    .sort())
    h.update(f).update(readFileSync(join(dir, f)));
  h.update(JSON.parse(readFileSync(require.resolve('@temporalio/workflow/package.json'), 'utf8')).version);
  return h.digest('hex').slice(0, 16);
}

/** Path of an up-to-date bundle, building it first when missing. */
export function prebuiltWorkflowBundle(cacheDir = join(ROOT, '.cache')): { codePath: string } {
  const codePath = join(cacheDir, `workflow-bundle-${workflowSourceHash()}.js`);
  if (!existsSync(codePath)) {
    mkdirSync(cacheDir, { recursive: true });
    const r = spawnSync(process.execPath, [require.resolve('tsx/cli'), join(ROOT, 'scripts', 'bundle-workflows.ts'), codePath], {
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    if (r.status !== 0 || !existsSync(codePath)) throw new Error(`could not bundle the workflows (exit ${r.status})`);
  }
  return { codePath };
}
