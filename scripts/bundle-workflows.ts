// Bundles workflows/ for the Temporal worker into the file given as the first argument.
// Runs as its own short-lived process: webpack's memory goes back to the OS when it exits,
// instead of staying in the long-running worker's RSS (README, "Performance").
import { renameSync, writeFileSync } from 'node:fs';
import { bundleWorkflowCode } from '@temporalio/worker';
import { workflowBundleOptions } from '../activities/workflow-bundle';

const out = process.argv[2];
if (!out) {
  process.stderr.write('usage: bundle-workflows <output.js>\n');
  process.exit(2);
}
bundleWorkflowCode(workflowBundleOptions())
  .then(({ code }) => {
    writeFileSync(`${out}.tmp`, code);
    renameSync(`${out}.tmp`, out); // atomic: a concurrent reader never sees half a bundle
  })
  .catch((err) => {
    process.stderr.write(`bundling failed: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
