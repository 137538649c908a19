// Finds (or builds once) the Temporal CLI and starts its dev server for `npm start` and the bench
// (the test suite starts its own through the SDK: test/helpers/suite-temporal.ts). Dev and test
// tooling only: production talks to a real Temporal cluster at TEMPORAL_ADDRESS.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { delimiter, join, resolve } from 'node:path';
import { SEARCH_ATTRIBUTES } from '../workflows/search-attributes';
import { temporalAnswers } from '../lib/temporal';

export const PROJECT_ROOT = resolve(__dirname, '..');
export const TEMPORAL_CLI_MODULE = 'github.com/temporalio/cli/cmd/temporal@v1.5.1';
const TOOLS_BIN = join(PROJECT_ROOT, '.tools', 'bin');

type Log = (line: string) => void;

/** Where `command` is on env.PATH, if anywhere. */
export function onPath(command: string, env: NodeJS.ProcessEnv): string | undefined {
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    const candidate = join(dir, command);
    if (dir && existsSync(candidate) && statSync(candidate).isFile()) return candidate;
  }
  return undefined;
}

/** Go on PATH or at /usr/local/go/bin/go (where its tarball installs it), if anywhere. */
export function goBinary(env: NodeJS.ProcessEnv, fallback = '/usr/local/go/bin/go'): string | undefined {
  return onPath('go', env) ?? (existsSync(fallback) ? fallback : undefined);
}

function findGo(env: NodeJS.ProcessEnv): string {
  const go = goBinary(env);
  if (!go) throw new Error('the Temporal CLI is missing and Go is not installed to build it (looked on PATH and /usr/local/go/bin)');
  return go;
}

/** A lock directory, so two processes (start and tests) never build the CLI at the same time. */
async function withBuildLock<T>(fn: () => T): Promise<T> {
  const lock = join(PROJECT_ROOT, '.tools', 'build.lock');
  mkdirSync(join(PROJECT_ROOT, '.tools'), { recursive: true });
  for (let waited = 0; ; waited += 1000) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      // A lock older than 30 minutes belongs to a build that died.
      if (Date.now() - statSync(lock).mtimeMs > 30 * 60_000) rmSync(lock, { recursive: true, force: true });
      else if (waited > 30 * 60_000) throw new Error(`timed out waiting for ${lock}`);
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
  try {
    return fn();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

/**
 * The Temporal CLI to use: $TEMPORAL_CLI, else `temporal` on PATH, else .tools/bin/temporal,
 * built with `go install` the first time (several minutes; reused afterwards).
 */
export async function resolveTemporalCli(env: NodeJS.ProcessEnv = process.env, log: Log = console.log): Promise<string> {
  if (env.TEMPORAL_CLI) {
    if (!existsSync(env.TEMPORAL_CLI)) throw new Error(`TEMPORAL_CLI points to ${env.TEMPORAL_CLI}, which does not exist`);
    return env.TEMPORAL_CLI;
  }
  const fromPath = onPath('temporal', env);
  if (fromPath) return fromPath;
  const local = join(TOOLS_BIN, 'temporal');
  if (existsSync(local)) return local;
  return withBuildLock(() => {
    if (existsSync(local)) return local; // built by whoever held the lock
    const go = findGo(env);
    log(`[temporal] building ${TEMPORAL_CLI_MODULE} into .tools/bin (first run only, takes a few minutes)`);
    const started = Date.now();
    const result = spawnSync(go, ['install', TEMPORAL_CLI_MODULE], {
      env: { ...env, GOBIN: TOOLS_BIN, GOFLAGS: `${env.GOFLAGS ?? ''} -trimpath`.trim() },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    if (result.status !== 0 || !existsSync(local)) {
      throw new Error(`go install ${TEMPORAL_CLI_MODULE} failed (exit ${result.status ?? result.signal})`);
    }
    log(`[temporal] built in ${Math.round((Date.now() - started) / 1000)} s`);
    return local;
  });
}

/**
 * A free TCP port on 127.0.0.1, picked at random below the kernel's ephemeral range (32768+): a
 * port the OS hands out itself can be taken by any outgoing connection before the caller binds
 * it, which made parallel test files collide.
 */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    if (await canBind(port)) return port;
  }
  throw new Error('no free port found between 20000 and 32000');
}

function canBind(port: number): Promise<boolean> {
  return new Promise((resolvePort) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolvePort(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolvePort(true)));
  });
}

export interface DevServer {
  address: string;
  uiUrl?: string;
  process: ChildProcess;
  stop(): Promise<void>;
}

export interface DevServerOptions {
  cli: string;
  port: number;
  ip?: string;
  /** Omit for an in-memory server. */
  dbFile?: string;
  /** UI port; omit for headless. */
  uiPort?: number;
  namespace?: string;
  log?: Log;
}

/**
 * Starts `temporal server start-dev` with the contract's search attributes and waits until it answers.
 * Kept beside the SDK's TestWorkflowEnvironment.createLocal because that one spawns the server in
 * the caller's process group, stops it only with SIGKILL and keeps its pid to itself, while
 * `npm start` needs Ctrl-C to reach the service first and the bench measures the server by pid.
 */
export async function startDevServer(opts: DevServerOptions): Promise<DevServer> {
  const ip = opts.ip ?? '127.0.0.1';
  const address = `${ip}:${opts.port}`;
  const args = ['server', 'start-dev', '--ip', ip, '--port', String(opts.port), '--log-level', 'error'];
  if (opts.dbFile) args.push('--db-filename', opts.dbFile);
  if (opts.uiPort) args.push('--ui-port', String(opts.uiPort));
  else args.push('--headless');
  if (opts.namespace && opts.namespace !== 'default') args.push('--namespace', opts.namespace);
  for (const [name, type] of Object.entries(SEARCH_ATTRIBUTES)) args.push('--search-attribute', `${name}=${type}`);
  // Dev-only tuning: visibility reads see writes at once, so the UI and tests filter reliably.
  args.push('--dynamic-config-value', 'system.forceSearchAttributesCacheRefreshOnRead=true');

  // Own process group: a terminal's Ctrl-C reaches the service first, and the server is stopped
  // after it, so workers drain against a live server.
  const child = spawn(opts.cli, args, { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  // Detached, so it would outlive a crashed parent: never leave it behind.
  const reap = () => child.kill('SIGKILL');
  process.once('exit', reap);
  void exited.then(() => process.removeListener('exit', reap));

  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`temporal dev server exited (${child.exitCode}): ${stderr.trim()}`);
    if (await temporalAnswers(address, 1000)) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`temporal dev server did not answer at ${address} within 60 s: ${stderr.trim()}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  return {
    address,
    uiUrl: opts.uiPort ? `http://${ip}:${opts.uiPort}` : undefined,
    process: child,
    async stop() {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
