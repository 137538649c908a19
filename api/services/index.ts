// All API services over one Core.
import type { Core } from '../../lib/core';
import { createLeaseCache, type LeaseCache } from '../../lib/lease-cache';
import type { GitTokenWorkflowInput } from '../../workflows/git-token-types';
import { createDispatchService } from './dispatches';
import { createIntegrationService } from './integrations';
import { createPullService } from './pull';
import { createRigService } from './rigs';
import { createTownService } from './towns';

export interface ServiceOptions {
  workflowDefaults?: Partial<GitTokenWorkflowInput>;
}

export function createServices(core: Core, opts: ServiceOptions = {}) {
  const cache: LeaseCache = createLeaseCache({
    db: core.db,
    secrets: core.secrets,
    databaseUrl: core.config.databaseUrl,
    logger: core.logger,
  });
  const integrations = createIntegrationService(core);
  const pull = createPullService({ ...core, cache });
  return {
    core,
    config: core.config,
    cache,
    towns: createTownService(core),
    integrations,
    rigs: createRigService({ ...core, integrations }),
    dispatches: createDispatchService({ ...core, workflowDefaults: opts.workflowDefaults }),
    pull,
    async start() {
      await cache.start();
    },
    async close() {
      await pull.close();
      await cache.close();
    },
  };
}

export type Services = ReturnType<typeof createServices>;
