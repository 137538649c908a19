// All API services over one Core, built in one place with their lifecycles: the lease cache
// listens and the pull-event retention sweeps from `start`; `close` lets webhook follow-up work
// finish, then the pull audit, the sweeper and the cache stop.
import type { Core } from '../../lib/core';
import { createLeaseCache, type LeaseCache } from '../../lib/lease-cache';
import { createOwnerTokenStore } from '../auth/owner-tokens';
import { createAuthenticator } from '../auth/principal';
import { createSessionStore } from '../auth/session-store';
import { createSignInLinks } from '../auth/sign-in-links';
import type { GitTokenWorkflowInput } from '../../workflows/git-token-types';
import { createDispatchService } from './dispatches';
import { createGithubWebhookService } from './github-webhooks';
import { createIdentityService } from './identities';
import { createInstallationCheck } from './installation-check';
import { createIntegrationService } from './integrations';
import { createOwnerService } from './owners';
import { createPullService } from './pull';
import { startPullEventSweeper } from './pull-event-retention';
import { createRigService } from './rigs';
import { createTownService } from './towns';

export interface ServiceOptions {
  workflowDefaults?: Partial<GitTokenWorkflowInput>;
  /** Instead of the core's (tests resolve names with their own resolver). */
  containerUrlPolicy?: Core['containerUrlPolicy'];
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
  const identities = createIdentityService(core);
  const webhooks = createGithubWebhookService({ ...core, integrations, identities });
  let sweeper: ReturnType<typeof startPullEventSweeper> | undefined;
  const sessions = createSessionStore(core);
  const ownerTokens = createOwnerTokenStore(core);
  return {
    core,
    config: core.config,
    cache,
    auth: createAuthenticator({ config: core.config, sessions, ownerTokens }),
    sessions,
    ownerTokens,
    signInLinks: createSignInLinks(core),
    owners: createOwnerService(core),
    identities,
    installationCheck: createInstallationCheck({ ...core, identities }),
    towns: createTownService(core),
    integrations,
    rigs: createRigService({ ...core, integrations }),
    dispatches: createDispatchService({
      ...core,
      workflowDefaults: opts.workflowDefaults,
      containerUrlPolicy: opts.containerUrlPolicy ?? core.containerUrlPolicy,
    }),
    pull,
    webhooks,
    async start() {
      await cache.start();
      sweeper = startPullEventSweeper({ db: core.db, logger: core.logger });
    },
    async close() {
      await webhooks.idle();
      await pull.close();
      await sweeper?.stop();
      await cache.close();
    },
  };
}

export type Services = ReturnType<typeof createServices>;
