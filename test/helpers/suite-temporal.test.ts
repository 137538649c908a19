// The suite's dev server never outlives a run that dies: the SDK kills it only from teardown, so
// suite-temporal.ts kills it on exit and on a terminating signal.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { PROJECT_ROOT, resolveTemporalCli } from '../../scripts/temporal-cli';
import { temporalAnswers } from '../../lib/temporal';
import { eventually } from './harness';
import { serverPid } from './suite-temporal';

/** Runs the child until it dies; returns the address its server had and how the child ended. */
async function crashRun(mode: 'throw' | 'term'): Promise<{ address: string; code: number | null; signal: NodeJS.Signals | null }> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(__dirname, 'suite-temporal-child.ts'), mode], {
    cwd: PROJECT_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((r) => child.once('exit', (c, s) => r([c, s])));
  const address = /ADDRESS (\S+)/.exec(out)?.[1];
  if (!address) throw new Error(`the child never started its server: ${out}`);
  return { address, code, signal };
}

const started: string[] = [];
afterAll(async () => {
  // A server a failing run left behind is not left to the machine.
  const cli = await resolveTemporalCli();
  for (const address of started) {
    const pid = serverPid(cli, Number(address.split(':')[1]));
    if (pid !== undefined) process.kill(pid, 'SIGKILL');
  }
});

it.each(['throw', 'term'] as const)('stops the dev server when the process running the suite dies (%s)', async (mode) => {
  const run = await crashRun(mode);
  started.push(run.address);
  expect(mode === 'throw' ? run.code : run.signal).toBe(mode === 'throw' ? 1 : 'SIGTERM');
  await eventually(async () => !(await temporalAnswers(run.address, 500)), 5000, `the server at ${run.address} to stop`);
});
