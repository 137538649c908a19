// Runs the real service in-process for a test: API on a real loopback listener, a Temporal worker
// on its own task queue (against the suite's dev server), the real Postgres, and fakes at the HTTP
// edge. Nothing of our own is mocked.
import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import pino from 'pino';
import type { Worker } from '@temporalio/worker';
import { createCore, type Core } from '../../lib/core';
import { createMetrics } from '../../lib/metrics';
import type { Sweeper } from '../../lib/sweeper';
import { loggerOptions, type Logger } from '../../lib/logger';
import { temporalConnectionOptions } from '../../lib/temporal-connection';
import { startApi, type RunningApi } from '../../api/server';
import {
  createTokenWorkers,
  installTemporalRuntime,
  NativeConnection,
  startWorkerSweepers,
  type TokenWorkerOptions,
} from '../../activities/worker';
import type { GitTokenWorkflowInput } from '../../workflows/git-token-types';
import { testConfig, testTemporalAddress } from './test-env';
import { loopbackResolver } from './test-resolver';
import { appendRunLog, logFileName, recordIssuedTokens } from './test-logs';

export const ADMIN = 'test-admin-token-0123456789';

export interface HarnessOptions {
  env?: Record<string, string | undefined>;
  workflowDefaults?: Partial<GitTokenWorkflowInput>;
  worker?: boolean;
}

export interface Harness {
  core: Core;
  api: RunningApi;
  url: string;
  taskQueue: string;
  /** Every log line the API and worker wrote (JSON), for secret scans. */
  logs: string[];
  /** The workers of the main, hot and sleeping task queues, as bin/repo-connect.ts runs them; set while running. */
  workers?: Worker[];
  /** Starts the worker, with the suite's workflow bundle unless another is given (patching demo). */
  startWorker(workflowBundle?: TokenWorkerOptions['workflowBundle']): Promise<void>;
  stopWorker(): Promise<void>;
  /** Admin-authenticated JSON request against the real listener. */
  call<T = unknown>(
    method: string,
    path: string,
    body?: unknown,
    headers?: Record<string, string>,
  ): Promise<{ status: number; body: T; headers: Headers }>;
  close(): Promise<void>;
}

/** Starts API + worker over a fresh core. */
export async function startHarness(opts: HarnessOptions = {}): Promise<Harness> {
  const taskQueue = `test-${randomUUID()}`;
  const { logger, logs } = runLogger('harness');
  installTemporalRuntime(logger);
  const config = testConfig({ TEMPORAL_ADDRESS: testTemporalAddress(), TEMPORAL_TASK_QUEUE: taskQueue, LOG_LEVEL: 'info', ...opts.env });
  // Container host names resolve to loopback or not at all: no DNS query leaves the machine.
  const core = await createCore(config, {
    logger,
    metrics: createMetrics({ defaults: false }),
    dbPoolSize: 5,
    resolveHost: loopbackResolver,
  });
  const api = await startApi(core, { workflowDefaults: opts.workflowDefaults, logger });

  let connection: NativeConnection | undefined;
  let running: Promise<unknown> | undefined;
  let sweeper: Sweeper | undefined;
  const h: Harness = {
    core,
    api,
    url: api.url,
    taskQueue,
    logs,
    async startWorker(workflowBundle = { codePath: process.env.TEST_WORKFLOW_BUNDLE! }) {
      connection = await NativeConnection.connect(temporalConnectionOptions(config.temporal));
      h.workers = await createTokenWorkers({ core, connection, workflowBundle });
      running = Promise.all(h.workers.map((w) => w.run()));
      // The worker process's other duty, as bin/repo-connect.ts runs it.
      sweeper = startWorkerSweepers(core, logger);
    },
    async stopWorker() {
      await sweeper?.stop();
      sweeper = undefined;
      if (!h.workers) return;
      for (const w of h.workers) w.shutdown();
      await running;
      await connection?.close();
      h.workers = undefined;
    },
    async call(method, path, body, headers = {}) {
      const res = await fetch(`${api.url}${path}`, {
        method,
        headers: { authorization: `Bearer ${ADMIN}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      // Secrets the service hands out (container and owner tokens, sign-in links) join the run's log scan.
      recordIssuedTokens([...text.matchAll(/rc[co]_[\w-]{43}|(?<=\/login\/link\/)[\w-]{43}/g)].map((m) => m[0]));
      return { status: res.status, body: (text ? JSON.parse(text) : null) as never, headers: res.headers };
    },
    async close() {
      await h.stopWorker();
      await api.close();
      await core.close();
    },
  };
  if (opts.worker !== false) await h.startWorker();
  return h;
}

/** A pino logger whose lines are kept in `logs` and, for the run-wide token scan in global teardown, on disk (see test-logs.ts). */
export function runLogger(kind: string): { logger: Logger; logs: string[] } {
  const logs: string[] = [];
  const logFile = logFileName(kind);
  const sink = new Writable({
    write(chunk, _enc, cb) {
      const line = chunk.toString();
      logs.push(line);
      appendRunLog(logFile, line);
      cb();
    },
  });
  return { logger: pino({ ...loggerOptions('info') }, sink), logs };
}

/** Polls `fn` every `intervalMs` until it returns a truthy value or the timeout passes. */
export async function eventually<T>(
  fn: () => Promise<T | undefined | null | false>,
  timeoutMs = 20_000,
  what = 'condition',
  intervalMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** A random owner id (tests never share owners). */
export const newOwner = () => randomUUID();
