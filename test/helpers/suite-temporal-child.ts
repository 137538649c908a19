// Starts the suite's Temporal server as global setup does, prints its address, then dies the way a
// run can: an uncaught error (argv `throw`) or a SIGTERM to this process alone (argv `term`).
import { startSuiteTemporal } from './suite-temporal';

void (async () => {
  const { env } = await startSuiteTemporal();
  process.stdout.write(`ADDRESS ${env.address}\n`);
  // Past the server's own startup output: a write after its reader died would end it by SIGPIPE,
  // which would hide a missing guard.
  await new Promise((r) => setTimeout(r, 2000));
  if (process.argv[2] === 'throw') throw new Error('crashed on purpose');
  process.kill(process.pid, 'SIGTERM');
  await new Promise((r) => setTimeout(r, 10_000));
})();
