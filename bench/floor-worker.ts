// A worker process that runs only floor-workflow.ts, in the service's process environment with a
// reused V8 context and every run cached, as the service's worker runs (without its heap setting,
// which trades CPU for memory). It answers `count` over IPC with the local activities run so far,
// so the bench can read CPU per cycle over a window (for the held design, the cycles its activities ran).
import { Context } from '@temporalio/activity';
import { bundleWorkflowCode, NativeConnection, Runtime, DefaultLogger, Worker } from '@temporalio/worker';
import { workflowBundleOptions } from '../activities/workflow-bundle';
import type { FloorInput } from './floor-workflow';

async function main() {
  const [address, taskQueue, design] = process.argv.slice(2);
  Runtime.install({ logger: new DefaultLogger('WARN'), shutdownSignals: ['SIGINT', 'SIGTERM'] });
  // The project's bundle logger (webpack's warnings and errors to stderr), with this bench's workflow.
  const bundle = await bundleWorkflowCode({ workflowsPath: require.resolve('./floor-workflow'), logger: workflowBundleOptions().logger });
  const connection = await NativeConnection.connect({ address });
  let ticks = 0;
  const worker = await Worker.create({
    connection,
    taskQueue,
    workflowBundle: bundle,
    activities: {
      tick: async () => void (ticks += 1),
      hold: async (input: FloorInput) => {
        const context = Context.current();
        for (let i = 0; i < input.cycles; i++) {
          if (i > 0) await context.sleep(input.periodMs);
          context.heartbeat(i);
          ticks += 1;
        }
      },
    },
    maxCachedWorkflows: 5000,
    // The held design keeps an activity running per workflow, and sends each cycle's heartbeat at once.
    ...(design === 'held' ? { maxConcurrentActivityTaskExecutions: 5000, maxHeartbeatThrottleInterval: '1 second' } : {}),
  });
  process.on('message', () => process.send?.({ ticks }));
  const running = worker.run();
  process.send?.({ ready: true });
  await running;
  await connection.close();
  process.disconnect?.(); // the IPC channel would keep the process alive
}

main().catch((err) => {
  process.stderr.write(`floor worker failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
