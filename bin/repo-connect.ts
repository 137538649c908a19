// Composition root of the service process: reads the configuration, applies migrations, wires
// the core and runs the API, the worker, or both (ROLE=all|api|worker), with graceful shutdown.
import { createServer } from 'node:http';
import { loadConfig, ConfigError } from '../lib/config';
import { sessionZoneProblem } from '../lib/db';
import { reachability } from '../lib/health';
import { createCore } from '../lib/core';
import { createLogger } from '../lib/logger';
import { describeWait, migrate } from '../lib/migrate';
import { tuneApiHeap, tuneWorkerHeaps } from '../lib/process-tuning';
import type { Sweeper } from '../lib/sweeper';
import { ensureSearchAttributes, quietCallContext } from '../lib/temporal';
import { temporalConnectError, temporalConnectionOptions } from '../lib/temporal-connection';
import { startApi, type RunningApi } from '../api/server';
import { createTokenWorkers, installTemporalRuntime, NativeConnection, startWorkerSweepers } from '../activities/worker';
import { adoptDeploymentIfUnset, resolveBuildId } from '../activities/worker-deployment';

/**
 * Longer than what the process closes, in order: the API (a pull may wait up to 30 s on a refresh),
 * then the worker (shutdownGraceTime, 20 s), then connections. Each role alone fits in 40 s, within
 * compose's stop_grace_period (45 s); both in one process (`npm start`) need more.
 */
const SHUTDOWN_DEADLINE_MS = { api: 40_000, worker: 40_000, all: 60_000 } as const;

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`repo-connect: ${err.message}\n`);
      process.exit(78); // EX_CONFIG
    }
    throw err;
  }
  const logger = createLogger(config.logLevel);
  installTemporalRuntime(logger);
  if (config.role !== 'worker') tuneApiHeap({ allocationSitePretenuring: config.apiAllocationSitePretenuring });
  if (config.role !== 'api') tuneWorkerHeaps(config.worker);

  const applied = await migrate(config.databaseUrl, undefined, { onWait: (wait) => logger.warn({ wait }, describeWait(wait)) });
  if (applied.length) logger.info({ applied }, 'migrations applied');

  const core = await createCore(config, { logger });
  const zone = await sessionZoneProblem(core.db);
  if (zone !== null) {
    process.stderr.write(
      `repo-connect: Postgres sessions run in ${zone}, not UTC: something between the service and Postgres drops the \`options\` startup parameter (a pooler?); let it through, or set the role's TimeZone to UTC\n`,
    );
    process.exit(78); // EX_CONFIG
  }
  // An API-only process runs the Temporal client's call context only around its few Temporal calls
  // (lib/temporal.ts). A worker keeps it as is: its activities run in a context storage of their
  // own, which keeps the promise hook on anyway, so switching this one off would buy nothing.
  if (config.role === 'api') quietCallContext(core.temporalConnection);
  await ensureSearchAttributes(core.temporalConnection, config.temporal.namespace);

  let api: RunningApi | undefined;
  if (config.role !== 'worker') {
    api = await startApi(core);
    logger.info({ url: api.url, publicUrl: config.publicUrl }, 'api listening');
  }

  let workerRun: Promise<void> | undefined;
  let shutdownWorker: (() => void) | undefined;
  let metricsServer: ReturnType<typeof createServer> | undefined;
  let sweeper: Sweeper | undefined;
  if (config.role !== 'api') {
    sweeper = startWorkerSweepers(core, logger);
    const connection = await NativeConnection.connect(temporalConnectionOptions(config.temporal)).catch(async (err) => {
      throw await temporalConnectError(config.temporal, err);
    });
    const deployment = config.temporal.deployment;
    const build = resolveBuildId(deployment.buildId);
    // One worker per task queue a dispatch waits on, each with its own cache size (README, "Performance").
    const workers = await createTokenWorkers({ core, connection, deployment: { config: deployment, buildId: build.buildId } });
    shutdownWorker = () => {
      for (const w of workers) if (w.getState() === 'RUNNING') w.shutdown();
    };
    // One worker failing shuts the others down; then the process stops (below) with the failure.
    const runs = workers.map((w) => w.run());
    for (const run of runs) run.catch(() => shutdownWorker?.());
    workerRun = Promise.allSettled(runs).then(async (settled) => {
      await connection.close();
      const failed = settled.find((r) => r.status === 'rejected');
      if (failed) throw failed.reason;
    });
    logger.info(
      {
        taskQueue: config.temporal.taskQueue,
        deployment: deployment.name,
        buildId: build.buildId,
        buildIdFrom: build.source,
        versioning: deployment.versioning,
      },
      'worker running',
    );
    if (deployment.versioning) {
      adoptDeploymentIfUnset({
        service: core.temporalConnection.workflowService,
        namespace: config.temporal.namespace,
        deploymentName: deployment.name,
        buildId: build.buildId,
      }).then(
        (outcome) => logger.info({ deployment: deployment.name, buildId: build.buildId, outcome }, 'worker deployment checked'),
        (err) =>
          logger.error(
            { err, deployment: deployment.name, buildId: build.buildId },
            'could not make this build the current version of a deployment that has none: no run reaches this worker until `temporal worker deployment set-current-version` names it',
          ),
      );
    }
    if (config.role === 'worker') {
      // A worker-only process has no API, so it serves its own /metrics for Prometheus, and a /healthz
      // for its container's probe: every task queue's worker running, Postgres and Temporal answering.
      metricsServer = createServer(async (req, res) => {
        if (req.url === '/healthz') {
          const body = { ...(await reachability(core)), workers: workers.every((w) => w.getState() === 'RUNNING') ? 'ok' : 'down' };
          const ok = Object.values(body).every((v) => v === 'ok');
          return void res.writeHead(ok ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify(body));
        }
        if (req.url !== '/metrics') return void res.writeHead(404).end();
        res.writeHead(200, { 'content-type': core.metrics.registry.contentType }).end(await core.metrics.registry.metrics());
      }).listen(config.workerMetricsPort, config.host);
      metricsServer.on('error', (err) => {
        logger.error({ err }, 'metrics listener failed');
        void stop('metrics-listener-failed', 1);
      });
    }
  }

  let stopping = false;
  // Order matters: the API closes first (no new requests, in-flight ones finish; a pull may be
  // waiting on the workflow, which needs a worker), then the worker drains its running
  // activities (shutdownGraceTime), then connections close.
  const stop = async (reason: string, code = 0) => {
    if (stopping) return;
    stopping = true;
    logger.info({ reason }, 'shutting down: finishing in-flight requests and activities');
    // Past this, something hangs: exit rather than wait for the orchestrator's SIGKILL.
    setTimeout(() => {
      logger.error({ reason }, 'shutdown did not finish in time');
      process.exit(1);
    }, SHUTDOWN_DEADLINE_MS[config.role]).unref();
    if (api) {
      // server.close() reaps only connections idle at that moment; one whose request finishes later
      // would stay open for the keep-alive timeout (72 s), so keep reaping until the close is done.
      const server = api.app.server;
      const reaper = setInterval(() => server.closeIdleConnections(), 200);
      await api.close().finally(() => clearInterval(reaper));
      logger.info('api closed');
    }
    shutdownWorker?.();
    await sweeper?.stop();
    await workerRun?.catch(() => undefined);
    if (workerRun) logger.info('worker drained');
    if (metricsServer) {
      const closed = new Promise((resolve) => metricsServer!.close(resolve));
      metricsServer.closeAllConnections(); // scrapers keep connections alive
      await closed;
    }
    await core.close();
    logger.info({ code }, 'stopped');
    process.exit(code);
  };
  process.once('SIGINT', () => void stop('SIGINT'));
  process.once('SIGTERM', () => void stop('SIGTERM'));
  workerRun?.catch((err) => {
    logger.error({ err }, 'worker failed');
    void stop('worker-failed', 1);
  });
}

main().catch((err) => {
  process.stderr.write(`repo-connect: failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
