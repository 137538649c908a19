// Composition root of the service process: reads the configuration, applies migrations, wires
// the core and runs the API, the worker, or both (ROLE=all|api|worker), with graceful shutdown.
import { createServer } from 'node:http';
import { loadConfig, ConfigError } from '../lib/config';
import { createCore } from '../lib/core';
import { createLogger } from '../lib/logger';
import { migrate } from '../lib/migrate';
import { ensureSearchAttributes } from '../lib/temporal';
import { startApi, type RunningApi } from '../api/server';
import { dashboardPlugin } from '../api/dashboard';
import { createTokenWorker, installTemporalRuntime, NativeConnection } from '../activities/worker';

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

  const applied = await migrate(config.databaseUrl);
  if (applied.length) logger.info({ applied }, 'migrations applied');

  const core = await createCore(config, { logger });
  await ensureSearchAttributes(core.temporalConnection, config.temporal.namespace);

  let api: RunningApi | undefined;
  if (config.role !== 'worker') {
    api = await startApi(core, { plugins: [dashboardPlugin] });
    logger.info({ url: api.url, publicUrl: config.publicUrl }, 'api listening');
  }

  let workerRun: Promise<void> | undefined;
  let shutdownWorker: (() => void) | undefined;
  let metricsServer: ReturnType<typeof createServer> | undefined;
  if (config.role !== 'api') {
    const connection = await NativeConnection.connect({ address: config.temporal.address });
    const worker = await createTokenWorker({ core, connection, taskQueue: config.temporal.taskQueue });
    shutdownWorker = () => worker.shutdown();
    workerRun = worker.run().finally(() => connection.close());
    logger.info({ taskQueue: config.temporal.taskQueue }, 'worker running');
    if (config.role === 'worker') {
      // A worker-only process has no API, so it serves its own /metrics for Prometheus.
      metricsServer = createServer(async (req, res) => {
        if (req.url !== '/metrics') return void res.writeHead(404).end();
        res.writeHead(200, { 'content-type': core.metrics.registry.contentType }).end(await core.metrics.registry.metrics());
      }).listen(config.workerMetricsPort, config.host);
    }
  }

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down: finishing in-flight requests and activities');
    await api?.close();
    shutdownWorker?.();
    await workerRun;
    metricsServer?.close();
    await core.close();
    logger.info('stopped');
    process.exit(0);
  };
  process.once('SIGINT', () => void stop('SIGINT'));
  process.once('SIGTERM', () => void stop('SIGTERM'));
  workerRun?.catch((err) => {
    logger.error({ err }, 'worker failed');
    void stop('worker-failed').then(() => process.exit(1));
  });
}

main().catch((err) => {
  process.stderr.write(`repo-connect: failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
