// Bundles of workflows/ with one small change, for the patching demo only (never the worker's
// bundle): the loop waits 10 ms before each mint, either behind `patched(DEMO_PATCH_ID)` (the right
// way) or unconditionally (what breaks running histories).
import { join } from 'node:path';
import { bundleWorkflowCode, type WorkflowBundle } from '@temporalio/worker';
import { workflowBundleOptions } from '../../../activities/workflow-bundle';

export const DEMO_PATCH_ID = 'demo-settle-before-mint';
const WORKFLOW = /[\\/]workflows[\\/]git-token-workflow\.ts$/;
// The loop's mint; the change goes right before it.
const ANCHOR = 'await refreshOnce(state.mintReason(s, changed));';

/** The workflow bundle with the demo change, guarded by `patched()` or not. */
export function demoBundle(opts: { guarded: boolean }): Promise<WorkflowBundle> {
  const settle = "await demo.sleep('10 milliseconds');";
  const insert = opts.guarded ? `if (demo.patched('${DEMO_PATCH_ID}')) ${settle}` : settle;
  return bundleWorkflowCode({
    ...workflowBundleOptions(),
    webpackConfigHook: (config) => {
      config.module?.rules?.push({
        test: WORKFLOW,
        enforce: 'pre', // on the TypeScript source, before the SDK's swc-loader compiles it
        use: [
          {
            loader: join(__dirname, 'edit-source-loader.js'),
            options: { anchor: ANCHOR, insert, prepend: "import * as demo from '@temporalio/workflow';" },
          },
        ],
      });
      return config;
    },
  });
}
