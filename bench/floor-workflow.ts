// The least a workflow can do per refresh cycle: wake on a timer, run one local activity, sleep
// again. What this costs the worker and the Temporal server is Temporal's own floor for any design
// with a workflow per dispatch (temporal-floor.ts); the token loop's cost above it and the direct
// path is this project's.
import { proxyActivities, proxyLocalActivities, sleep } from '@temporalio/workflow';

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

/**
 * The other design, for comparison (the bench's `held` part): the loop held in one activity that
 * sleeps between cycles and heartbeats once per cycle, the workflow only waiting for it. Its cost per
 * cycle is a heartbeat, not a workflow task; README, "Performance", says what the design would lose.
 */
export async function heldFloorWorkflow(input: FloorInput): Promise<void> {
  const { hold } = proxyActivities<{ hold(input: FloorInput): Promise<void> }>({
    startToCloseTimeout: '1 hour',
    heartbeatTimeout: input.periodMs * 2,
    retry: { maximumAttempts: 1 },
  });
  await hold(input);
}
