// The Temporal worker that hosts the git-token workflow and its activities.
import { DefaultLogger, NativeConnection, Runtime, Worker, type LogLevel } from '@temporalio/worker';
import type { Config } from '../lib/config';
import type { Core } from '../lib/core';
import type { Logger } from '../lib/logger';
import { startProjectTokenSweeper } from '../lib/project-token-sweeper';
import { startRevocationSweeper } from '../lib/revocation-queue';
import type { Sweeper } from '../lib/sweeper';
import { createTokenActivities, type TokenActivities } from './token-activities';
import { prebuiltWorkflowBundle } from './workflow-bundle';
import { resolveBuildId, workerDeploymentOptions } from './worker-deployment';

export interface TokenWorkerOptions {
  core: Core;
  connection: NativeConnection;
  taskQueue: string;
  /** A prebuilt bundle (tests build it once); otherwise the cached one under .cache/ (built if missing). */
  workflowBundle?: { code: string } | { codePath: string };
  maxCachedWorkflows?: number;
  maxConcurrentActivityTaskExecutions?: number;
  /** The deployment version (tests run several builds); otherwise the configured deployment and the resolved build id. */
  deployment?: { config: Config['temporal']['deployment']; buildId: string };
}

let runtimeInstalled = false;

/** Routes the SDK's own logs into pino at `level`, leaving signals to the caller (once per process; later calls are ignored). */
export function installTemporalRuntime(logger: Logger, level: LogLevel = 'WARN'): void {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  Runtime.install({
    logger: new DefaultLogger(level, (entry) => {
      const method = entry.level === 'ERROR' ? 'error' : entry.level === 'WARN' ? 'warn' : entry.level === 'INFO' ? 'info' : 'debug';
      logger[method]({ temporal: entry.meta }, entry.message);
    }),
    // The composition root owns SIGTERM/SIGINT: it closes the API before draining the worker (an
    // in-flight pull may be waiting on the workflow). The SDK's own handlers would drain first.
    shutdownSignals: [],
  });
}

/** The token activities wired from `core`, as the worker runs them (the activity tests too). */
export function tokenActivitiesFrom(core: Core): TokenActivities {
  return createTokenActivities({
    db: core.db,
    secrets: core.secrets,
    github: core.github,
    gitlabGrants: core.gitlabGrants,
    projectTokens: core.projectTokens,
    leases: core.leases,
    notifier: core.notifier,
    metrics: core.metrics,
    logger: core.logger,
    revocations: core.revocations,
    marginSeconds: core.config.tokenRefreshMarginSeconds,
    containerUrlPolicy: core.containerUrlPolicy,
  });
}

/** Builds (does not run) the worker for `taskQueue`, wiring activities from `core`. */
export async function createTokenWorker(opts: TokenWorkerOptions): Promise<Worker> {
  const { core } = opts;
  const activities = tokenActivitiesFrom(core);
  const deployment = opts.deployment ?? {
    config: core.config.temporal.deployment,
    buildId: resolveBuildId(core.config.temporal.deployment.buildId).buildId,
  };
  return Worker.create({
    connection: opts.connection,
    workerDeploymentOptions: workerDeploymentOptions(deployment.config, deployment.buildId),
    namespace: core.config.temporal.namespace,
    taskQueue: opts.taskQueue,
    activities,
    workflowBundle: opts.workflowBundle ?? prebuiltWorkflowBundle(),
    // A run that is evicted is rebuilt at its next wake (its history replayed), which costs more CPU
    // than a cached run costs memory when wakes come every few minutes, and less memory when they come
    // hourly: the caller sizes each queue's cache (createTokenWorkers; README, "Performance").
    maxCachedWorkflows: opts.maxCachedWorkflows ?? core.config.worker.maxCachedWorkflows,
    maxConcurrentActivityTaskExecutions: opts.maxConcurrentActivityTaskExecutions ?? core.config.worker.maxConcurrentActivities,
    // Let running activities (a push, a revoke) finish on shutdown.
    shutdownGraceTime: '20 seconds',
  });
}

/**
 * The workers a worker process runs, one per task queue a dispatch can wait on (README, "How the token
 * path works"): the main queue, where dispatches start and sleep out long waits, keeping few runs in
 * memory; the hot queue, where short waits are waited out in a cache; and the sleeping queue, where
 * dispatches started by earlier builds sleep. Every queue is always polled: runs may wait on any of
 * them from before a configuration change or a deploy.
 */
export async function createTokenWorkers(opts: Omit<TokenWorkerOptions, 'taskQueue' | 'maxCachedWorkflows'>): Promise<Worker[]> {
  const { temporal, worker } = opts.core.config;
  const few = worker.sleepingCachedWorkflows;
  const queues: Array<[string, number]> = [
    [temporal.taskQueue, worker.sleepingAfterSeconds > 0 ? few : worker.maxCachedWorkflows],
    [temporal.hotTaskQueue, worker.maxCachedWorkflows],
    [temporal.sleepingTaskQueue, few],
  ];
  return Promise.all(queues.map(([taskQueue, maxCachedWorkflows]) => createTokenWorker({ ...opts, taskQueue, maxCachedWorkflows })));
}

/**
 * A worker process's duties beside its workers: the GitLab project tokens' sweep and the retries of
 * GitHub revocations that failed (lib/revocation-queue.ts). One handle stops both.
 */
export function startWorkerSweepers(core: Pick<Core, 'config' | 'projectTokens' | 'revocations'>, logger: Logger): Sweeper {
  const sweepers = [
    startProjectTokenSweeper({ projectTokens: core.projectTokens, idleSeconds: core.config.projectTokens.idleSeconds, logger }),
    startRevocationSweeper({ queue: core.revocations, logger }),
  ];
  return { stop: async () => void (await Promise.all(sweepers.map((s) => s.stop()))) };
}

export { NativeConnection };
