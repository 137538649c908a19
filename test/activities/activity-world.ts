// What the activity tests run against: the real activities over a real core (Postgres, lease
// store, provider clients, notifier), the HTTP fakes of GitHub, GitLab and the container, and
// rows written as the API would write them. No worker and no workflow: each activity runs inside
// the SDK's MockActivityEnvironment, which stands in for the worker's activity context.
import { randomBytes, randomUUID } from 'node:crypto';
import type { Info } from '@temporalio/activity';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { createCore, type Core } from '../../lib/core';
import { createMetrics } from '../../lib/metrics';
import { fingerprint } from '../../lib/secrets';
import { containerTokenContext, gitlabTokenContext, townTokenContext } from '../../lib/secret-contexts';
import type { TokenActivities } from '../../activities/token-activities';
import { tokenActivitiesFrom } from '../../activities/worker';
import type { MintLeaseInput } from '../../workflows/git-token-types';
import { FakeContainerHost } from '../fakes/container';
import { FakeGitLab } from '../fakes/gitlab';
import { runLogger } from '../helpers/harness';
import { githubWorld, type GithubWorld } from '../helpers/scenario';
import { testConfig } from '../helpers/test-env';

const GITLAB_APP = { clientId: 'rc-app', clientSecret: 'rc-secret', redirectUri: 'http://127.0.0.1/integrations/gitlab/callback' };

export interface ActivityWorld {
  core: Core;
  github: GithubWorld;
  gitlab: FakeGitLab;
  containers: FakeContainerHost;
  /** Every log line the activities wrote (JSON). */
  logs: string[];
  activities: TokenActivities;
  /** An activity context as the worker gives one; `info` overrides the SDK's defaults (e.g. `isLocal`). */
  env(info?: Partial<Info>): MockActivityEnvironment;
  close(): Promise<void>;
}

/**
 * Starts the fakes and the core, and builds the activities as the worker does. `databaseUrl`: where
 * the core reaches Postgres (a proxy that fails on cue), instead of the test database directly.
 */
export async function startActivityWorld(opts: { databaseUrl?: string } = {}): Promise<ActivityWorld> {
  const [github, gitlab, containers] = await Promise.all([githubWorld(), FakeGitLab.start(), FakeContainerHost.start()]);
  gitlab.registerApplication(GITLAB_APP);
  const { logger, logs } = runLogger('activities');
  const config = testConfig({
    ...github.env,
    GITLAB_URL: gitlab.baseUrl,
    GITLAB_CLIENT_ID: GITLAB_APP.clientId,
    GITLAB_CLIENT_SECRET: GITLAB_APP.clientSecret,
    // Above the slowest answer a test asks a fake for, so the client never gives up first.
    PROVIDER_TIMEOUT_SECONDS: '15',
    LOG_LEVEL: 'info',
    ...(opts.databaseUrl ? { DATABASE_URL: opts.databaseUrl } : {}),
  });
  const core = await createCore(config, { logger, metrics: createMetrics({ defaults: false }), dbPoolSize: 3 });
  const activities = tokenActivitiesFrom(core);
  // The SDK's own lines ("Activity failed" and the like) go to the run's logs, which are scanned for tokens.
  const sdkLogger = new DefaultLogger('WARN', (e) => logger.warn({ temporal: e.meta }, e.message));
  return {
    core,
    github,
    gitlab,
    containers,
    logs,
    activities,
    env: (info) => new MockActivityEnvironment(info, { logger: sdkLogger }),
    async close() {
      await core.close();
      await Promise.all([github.gh.close(), gitlab.close(), containers.close()]);
    },
  };
}

/** `env.run(fn, ...args)` with the activity's own result type (the SDK's `run` infers only the arguments). */
export function runActivity<A extends unknown[], R>(env: MockActivityEnvironment, fn: (...args: A) => Promise<R>, ...args: A): Promise<R> {
  return env.run(fn, ...args) as Promise<R>;
}

/** A town of a new owner. */
/** An owner row (towns and integrations reference one). */
async function newOwner(w: ActivityWorld): Promise<string> {
  const id = randomUUID();
  await w.core.db.owner.create({ data: { id } });
  return id;
}

async function newTown(w: ActivityWorld, ownerId?: string): Promise<string> {
  ownerId ??= await newOwner(w);
  return (await w.core.db.town.create({ data: { name: 'activities', ownerId } })).id;
}

/** A rig connected to a new installation of the standard GitHub App, on its first repository. */
export async function githubRig(w: ActivityWorld) {
  const inst = w.github.gh.addInstallation({
    appId: w.github.standard.appId,
    account: { login: `acme-${randomBytes(3).toString('hex')}` },
    repositories: 1,
  });
  const repo = inst.repositories[0];
  const ownerId = await newOwner(w);
  const integration = await w.core.db.platformIntegration.create({
    data: { ownerId, provider: 'github', githubInstallationId: BigInt(inst.installationId), githubAppType: 'standard' },
  });
  const rig = await w.core.db.rig.create({
    data: {
      townId: await newTown(w, ownerId),
      name: repo.name,
      gitUrl: String(repo.clone_url),
      defaultBranch: 'main',
      platformIntegrationId: integration.id,
      repositoryId: BigInt(repo.id),
      repositoryFullName: repo.full_name,
    },
  });
  return { rigId: rig.id, integrationId: integration.id, installationId: inst.installationId, repo };
}

/** A rig connected to a GitLab grant whose access token has expired, so the next mint refreshes it. */
export async function gitlabRig(w: ActivityWorld) {
  const user = w.gitlab.addUser({ username: `alice-${randomBytes(3).toString('hex')}` });
  const [project] = w.gitlab.addProjects(user.id, 1);
  const grant = w.gitlab.grant(user.id, GITLAB_APP.clientId);
  const ownerId = await newOwner(w);
  const id = randomUUID();
  await w.core.db.platformIntegration.create({
    data: {
      id,
      ownerId,
      provider: 'gitlab',
      gitlabBaseUrl: w.gitlab.baseUrl,
      accountId: BigInt(user.id),
      accountLogin: user.username,
      accessTokenEnc: w.core.secrets.encrypt(grant.accessToken, gitlabTokenContext(id, 'access')),
      refreshTokenEnc: w.core.secrets.encrypt(grant.refreshToken, gitlabTokenContext(id, 'refresh')),
      accessTokenExpiresAt: new Date(Date.now() - 1000),
    },
  });
  const rig = await w.core.db.rig.create({
    data: {
      townId: await newTown(w, ownerId),
      name: project.path,
      gitUrl: project.http_url_to_repo,
      defaultBranch: 'main',
      platformIntegrationId: id,
      repositoryId: BigInt(project.id),
    },
  });
  return { rigId: rig.id, integrationId: id, userId: user.id };
}

/**
 * A rig with a manual git URL. `townToken`: the town's token for its host, as PUT git-auth stores
 * it; `sealedFor` seals it for another town (a row copied across towns, which must not decrypt).
 */
export async function manualRig(w: ActivityWorld, opts: { townToken?: string; sealedFor?: string } = {}) {
  const townId = await newTown(w);
  const host = 'git.example.com';
  if (opts.townToken) {
    await w.core.db.townGitAuth.create({
      data: {
        townId,
        host,
        tokenEnc: w.core.secrets.encrypt(opts.townToken, townTokenContext(opts.sealedFor ?? townId, host)),
        fingerprint: fingerprint(opts.townToken),
      },
    });
  }
  const rig = await w.core.db.rig.create({
    data: { townId, name: `legacy-${randomBytes(3).toString('hex')}`, gitUrl: `https://${host}/acme/legacy.git`, defaultBranch: 'main' },
  });
  return { rigId: rig.id, townId };
}

/**
 * A dispatch of `rigId` into a new fake container that knows its container token, as the dispatch
 * route creates it. `unknownContainer`: its URL names a container the host never had (404).
 */
export async function newDispatch(w: ActivityWorld, rigId: string, opts: { unknownContainer?: boolean } = {}) {
  const container = `c-${randomUUID()}`;
  const containerUrl = opts.unknownContainer ? `${w.containers.baseUrl}/c/${container}` : w.containers.add(container);
  const containerToken = randomBytes(24).toString('base64url');
  const id = randomUUID();
  await w.core.db.agentDispatch.create({
    data: {
      id,
      rigId,
      containerUrl,
      containerTokenHash: fingerprint(containerToken),
      containerTokenEnc: w.core.secrets.encrypt(containerToken, containerTokenContext(id)),
      workflowId: `git-token-${id}`,
    },
  });
  if (!opts.unknownContainer) w.containers.setBearer(container, containerToken);
  return { dispatchId: id, container };
}

/** The input the workflow gives a mint (a fresh mint key each time). */
export function mintInput(dispatchId: string, extra: Partial<MintLeaseInput> = {}): MintLeaseInput {
  return { dispatchId, mintKey: `test:${randomUUID()}`, reason: 'initial', scheduledFor: null, ...extra };
}

/** The dispatch as GET /api/dispatches/:id reads it, and the kinds of its events, oldest first. */
export async function dispatchState(w: ActivityWorld, dispatchId: string) {
  const d = await w.core.db.agentDispatch.findUniqueOrThrow({ where: { id: dispatchId } });
  const events = await w.core.db.tokenEvent.findMany({ where: { dispatchId }, orderBy: { id: 'asc' } });
  return { status: d.status, generation: d.generation, lastErrorCode: d.lastErrorCode, events: events.map((e) => e.kind), details: events };
}
