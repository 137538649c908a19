// The least a workflow can do per refresh cycle: wake on a timer, run one local activity, sleep
// again. What this costs the worker and the Temporal server is Temporal's own floor for any design
// with a workflow per dispatch (temporal-floor.ts); the token loop's cost above it and the direct
// path is this project's.
import { proxyLocalActivities, sleep } from '@temporalio/workflow';

const { tick } = proxyLocalActivities<{ tick(): Promise<void> }>({ startToCloseTimeout: '10 seconds' });

export interface FloorInput {
  cycles: number;
  periodMs: number;
}

export async function floorWorkflow(input: FloorInput): Promise<void> {
  for (let i = 0; i < input.cycles; i++) {
    await tick();
    if (i + 1 < input.cycles) await sleep(input.periodMs);
  }
}
