// The worker's bundle preloads the workflow modules, so a cached run does not carry its own copy
// of them. Checked with the SDK's own reusable-context sandbox, the one the worker runs: which
// modules does a new run instantiate for itself? A bundle built without the preload list is the
// control (it must show the modules the preload takes away).
import { readFileSync } from 'node:fs';
import { bundleWorkflowCode } from '@temporalio/worker';
import { parseWorkflowCode } from '@temporalio/worker/lib/worker';
import { ReusableVMWorkflowCreator } from '@temporalio/worker/lib/workflow/reusable-vm';
import { globalHandlers } from '@temporalio/worker/lib/workflow/vm-shared';
import { workflowBundleOptions } from '../../activities/workflow-bundle';

/** Module ids a fresh run of gitTokenWorkflow instantiates for itself, for two runs in one context. */
async function perRunModules(code: string, filename: string): Promise<string[][]> {
  const creator = await ReusableVMWorkflowCreator.create(parseWorkflowCode(code, filename), 5000, new Set(), undefined);
  try {
    const runs: string[][] = [];
    for (const runId of ['run-a', 'run-b']) {
      const now = Date.now();
      const info = {
        workflowType: 'gitTokenWorkflow',
        runId,
        workflowId: `wf-${runId}`,
        namespace: 'default',
        taskQueue: 'q',
        firstExecutionRunId: runId,
        attempt: 1,
        historyLength: 0,
        historySize: 0,
        continueAsNewSuggested: false,
        unsafe: { isReplaying: false, now: () => now },
        startTime: new Date(now),
        runStartTime: new Date(now),
        searchAttributes: {},
        typedSearchAttributes: [],
        memo: {},
        priority: {},
      };
      // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the sandbox's options type is internal
      const run = await creator.createWorkflow({ info, randomnessSeed: [1, 2], now, showStackTraceSources: false } as any);
      const { context } = creator as unknown as { context: { __TEMPORAL_ACTIVATOR__: { moduleCache: Map<string, unknown> } } };
      const activator = context.__TEMPORAL_ACTIVATOR__;
      runs.push([...activator.moduleCache.keys()]);
      await run.dispose();
    }
    return runs;
  } finally {
    await creator.destroy();
  }
}

// The sandbox installs a process-wide promise hook and stack-trace formatter: take them down again,
// so the rest of this Jest worker's files run without them.
afterAll(() => globalHandlers.uninstall());

const shared = (ids: string[]) => ids.filter((id) => /workflows\/|@temporalio\/workflow\//.test(id));

it('a run of the worker bundle instantiates none of the workflow modules for itself', async () => {
  const path = process.env.TEST_WORKFLOW_BUNDLE!;
  const runs = await perRunModules(readFileSync(path, 'utf8'), path);
  for (const ids of runs) expect(shared(ids)).toEqual([]);
});

it('control: without the preload list every run instantiates them again', async () => {
  const { workflowsPath, logger } = workflowBundleOptions();
  const { code } = await bundleWorkflowCode({ workflowsPath, logger });
  const runs = await perRunModules(code, '/tmp/plain-workflow-bundle.js');
  for (const ids of runs) {
    expect(shared(ids)).toEqual(
      expect.arrayContaining(['./workflows/git-token-workflow.ts', './node_modules/@temporalio/workflow/lib/index.js']),
    );
  }
});
