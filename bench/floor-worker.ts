// A worker process that runs only floor-workflow.ts, in the service's process environment with a
// reused V8 context and every run cached, as the service's worker runs (without its heap setting,
// which trades CPU for memory). It answers `count` over IPC with the local activities run so far,
// so the bench can read CPU per cycle over a window.
import { bundleWorkflowCode, NativeConnection, Runtime, DefaultLogger, Worker } from '@temporalio/worker';

async function main() {
  const [address, taskQueue] = process.argv.slice(2);
  Runtime.install({ logger: new DefaultLogger('WARN'), shutdownSignals: ['SIGINT', 'SIGTERM'] });
  const bundle = await bundleWorkflowCode({ workflowsPath: require.resolve('./floor-workflow'), logger: quietLogger });
  const connection = await NativeConnection.connect({ address });
  let ticks = 0;
  const worker = await Worker.create({
    connection,
    taskQueue,
    workflowBundle: bundle,
    activities: { tick: async () => void (ticks += 1) },
    maxCachedWorkflows: 5000,
  });
  process.on('message', () => process.send?.({ ticks }));
  const running = worker.run();
  process.send?.({ ready: true });
  await running;
  await connection.close();
  process.disconnect?.(); // the IPC channel would keep the process alive
}

const quiet = () => undefined;
const quietLogger = {
  log: quiet,
  trace: quiet,
  debug: quiet,
  info: quiet,
  warn: quiet,
  error: (m: string) => process.stderr.write(`${m}\n`),
};

main().catch((err) => {
  process.stderr.write(`floor worker failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
