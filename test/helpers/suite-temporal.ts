// The suite's Temporal dev server, started by the SDK's own test tooling over the CLI the project
// builds: in memory, headless, the contract's search attributes, on a port below the ephemeral
// range (see freePort).
import { spawnSync } from 'node:child_process';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { freePort, resolveTemporalCli } from '../../scripts/temporal-cli';
import {
  CredentialScopeKey,
  CredentialSourceKey,
  DispatchStatusKey,
  RepositoryKey,
  RigIdKey,
  TownIdKey,
} from '../../workflows/search-attributes';

export interface SuiteTemporal {
  env: TestWorkflowEnvironment;
  /** env.teardown(), and the exit guard dropped. */
  stop(): Promise<void>;
}

// The SDK waits 5 s for its server to answer and gives up; a busy machine or a port taken in the
// meantime gets another try on another port.
const ATTEMPTS = 3;

/** Starts the dev server the test workers share (they reach it through TEST_TEMPORAL_ADDRESS). */
export async function startSuiteTemporal(): Promise<SuiteTemporal> {
  // Jest owns its main process's signals: the SDK's default runtime listens on SIGINT and SIGTERM,
  // which keeps a killed run alive. (The SDK drops its runtime again once the server is torn down.)
  Runtime.install({ logger: new DefaultLogger('WARN'), shutdownSignals: [] });
  const cli = await resolveTemporalCli(process.env, (l) => process.stderr.write(`${l}\n`));
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    try {
      const env = await TestWorkflowEnvironment.createLocal({
        server: {
          executable: { type: 'existing-path', path: cli },
          port,
          searchAttributes: [RigIdKey, TownIdKey, CredentialSourceKey, DispatchStatusKey, CredentialScopeKey, RepositoryKey],
          log: { format: 'pretty', level: 'error' },
          // Dev-only tuning: visibility reads see writes at once, so tests filter reliably.
          extraArgs: ['--dynamic-config-value', 'system.forceSearchAttributesCacheRefreshOnRead=true'],
        },
      });
      const forget = killOnExit(cli, port);
      return {
        env,
        async stop() {
          await env.teardown();
          forget();
        },
      };
    } catch (err) {
      if (attempt >= ATTEMPTS) throw err;
      process.stderr.write(`[setup] temporal dev server on port ${port} did not start (${(err as Error).message}); trying another port\n`);
    }
  }
}

/**
 * The SDK kills its server only from teardown or when its handle is garbage-collected, neither of
 * which happens when jest's process dies, so the server's pid is killed on exit or a terminating
 * signal. Returns the function that drops the guard.
 */
function killOnExit(cli: string, port: number): () => void {
  const pid = serverPid(cli, port, process.pid);
  if (pid === undefined) {
    process.stderr.write('[setup] could not find the temporal dev server process: a crashed run may leave it running\n');
    return () => undefined;
  }
  const kill = () => {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  };
  const onSignal = (signal: NodeJS.Signals) => {
    kill();
    process.kill(process.pid, signal); // the default action, now that this listener is gone
  };
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  process.once('exit', kill);
  for (const s of signals) process.once(s, onSignal);
  return () => {
    process.off('exit', kill);
    for (const s of signals) process.off(s, onSignal);
  };
}

/** The process running `cli … --port <port>` (a child of `parent` when given), found with ps: the SDK does not expose its pid. */
export function serverPid(cli: string, port: number, parent?: number): number | undefined {
  const ps = spawnSync('ps', ['-A', '-o', 'pid=,ppid=,args='], { encoding: 'utf8' });
  for (const line of (ps.stdout ?? '').split('\n')) {
    const m = /^\s*(\d+)\s+(\d+)\s+(.*)$/.exec(line);
    if (!m || (parent !== undefined && Number(m[2]) !== parent)) continue;
    if (m[3].startsWith(cli) && new RegExp(` --port ${port}( |$)`).test(m[3])) return Number(m[1]);
  }
  return undefined;
}
