// Builds the long-lived parts one process needs from a Config: Prisma, the Temporal client, the
// provider clients and the services over them. Only composition roots (bin/repo-connect.ts, and
// tests standing in for it) call this; everything else receives the parts it needs.
import { Client, Connection } from '@temporalio/client';
import type { Config } from './config';
import { parseContainerUrlAllow, resolveWithDns, type ContainerUrlPolicy, type ResolveHost } from './container-url-policy';
import { createDb, type Db } from './db';
import { createDispatchNotifier, type DispatchNotifier } from './dispatch-notifier';
import { createGitlabGrants, type GitlabGrants } from './gitlab-grant';
import { createLeaseStore, type LeaseStore } from './lease-store';
import { createLogger, type Logger } from './logger';
import { createMetrics, type Metrics } from './metrics';
import { createProjectTokens, type ProjectTokens } from './project-tokens';
import { createRevocationQueue, type RevocationQueue } from './revocation-queue';
import { createGithubClient } from './providers/github';
import { createGitlabClient } from './providers/gitlab';
import { createGithubUserClient } from './providers/github-user';
import type { GithubClient, GithubUserClient, GitlabClient } from './providers/types';
import { createSecretBox, type SecretBox } from './secrets';
import { temporalConnectError, temporalConnectionOptions } from './temporal-connection';

export interface Core {
  config: Config;
  db: Db;
  secrets: SecretBox;
  metrics: Metrics;
  logger: Logger;
  github: GithubClient;
  /** The apps' user authorization: sign-in and installation checks. */
  githubUser: GithubUserClient;
  gitlab: GitlabClient;
  gitlabGrants: GitlabGrants;
  projectTokens: ProjectTokens;
  leases: LeaseStore;
  /** GitHub tokens whose revocation failed outside a stop, retried by the worker's sweeper. */
  revocations: RevocationQueue;
  temporalConnection: Connection;
  temporal: Client;
  notifier: DispatchNotifier;
  /** Where tokens may be pushed: checked at dispatch creation (API) and at every push (worker). */
  containerUrlPolicy: ContainerUrlPolicy;
  close(): Promise<void>;
}

export interface CoreOptions {
  logger?: Logger;
  metrics?: Metrics;
  dbPoolSize?: number;
  /** How container host names resolve (default: the system's DNS). */
  resolveHost?: ResolveHost;
}

/** Wires the process's shared parts from `config`. */
export async function createCore(config: Config, opts: CoreOptions = {}): Promise<Core> {
  const logger = opts.logger ?? createLogger(config.logLevel);
  const metrics = opts.metrics ?? createMetrics();
  const db = createDb(config.databaseUrl, { max: opts.dbPoolSize ?? config.databasePoolSize });
  const secrets = createSecretBox(config.secretsKeys);
  const timeoutMs = config.providerTimeoutMs;
  const github = createGithubClient({ apiUrl: config.github.apiUrl, apps: config.github.apps, timeoutMs });
  const gitlab = createGitlabClient({
    clientId: config.gitlab.clientId,
    clientSecret: config.gitlab.clientSecret,
    timeoutMs,
    allowedBaseUrls: config.gitlab.allowedUrls,
  });
  const temporalConnection = await Connection.connect(temporalConnectionOptions(config.temporal)).catch(async (err) => {
    throw await temporalConnectError(config.temporal, err);
  });
  const temporal = new Client({ connection: temporalConnection, namespace: config.temporal.namespace });
  const notifier = createDispatchNotifier({ db, temporal, logger });
  const gitlabGrants = createGitlabGrants({
    db,
    secrets,
    gitlab,
    onRefresh: (outcome) => metrics.gitlabRefreshes.inc({ outcome }),
    onRotated: (integrationId, asking) => notifier.integrationChanged(integrationId, 'gitlab grant rotated', asking),
  });
  const projectTokens = createProjectTokens({
    db,
    secrets,
    gitlab,
    grants: gitlabGrants,
    rotateSeconds: config.projectTokens.rotateSeconds,
    retrySeconds: config.projectTokens.retrySeconds,
    onChanged: (rigId, reason, asking) => notifier.rigChanged(rigId, reason, asking),
    onAction: (action) => metrics.projectTokens.inc({ action }),
  });
  return {
    config,
    db,
    secrets,
    metrics,
    logger,
    github,
    githubUser: createGithubUserClient({ apiUrl: config.github.apiUrl, clients: config.github.oauthClients, timeoutMs }),
    gitlab,
    gitlabGrants,
    projectTokens,
    leases: createLeaseStore({ db, secrets }),
    revocations: createRevocationQueue({ db, secrets, github, metrics, logger }),
    temporalConnection,
    temporal,
    notifier,
    containerUrlPolicy: {
      allow: parseContainerUrlAllow(config.containerUrlAllow).allow,
      production: config.nodeEnv === 'production',
      resolve: opts.resolveHost ?? resolveWithDns,
    },
    async close() {
      await temporalConnection.close().catch(() => undefined);
      await db.$disconnect();
    },
  };
}
