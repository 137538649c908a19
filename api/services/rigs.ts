// Rigs: connected through an integration (repository picked from its list) or by a manual URL
// that falls back on the town's static tokens.
import type { z } from 'zod';
import type { Core } from '../../lib/core';
import { isUniqueViolation } from '../../lib/db';
import { gitHost } from '../../lib/git-host';
import type { PlatformIntegration, Rig } from '../../prisma/generated/client';
import { ENDED_STATUSES } from '../../workflows/git-token-types';
import type { PlatformRepository } from '../../lib/providers/types';
import { badRequest, conflict, forbidden, notFound, unprocessable } from '../errors';
import type { createRigBody, patchRigBody } from '../schemas/rigs';
import type { IntegrationService } from './integrations';
import { presentRig } from './presenters';
import { branchProblem, decideAccess, gitUrlProblem, rigScope } from './rig-fns';

type Deps = Pick<Core, 'db' | 'notifier' | 'projectTokens'> & { integrations: IntegrationService };

interface Connection {
  platformIntegrationId: string;
  repositoryId: bigint;
  repositoryFullName: string;
  gitUrl: string;
  defaultBranch: string;
}

type Access = 'read' | 'write';

export function createRigService(deps: Deps) {
  const { db } = deps;

  async function getRig(rigId: string): Promise<Rig & { town: { ownerId: string } }> {
    const rig = await db.rig.findUnique({ where: { id: rigId }, include: { town: { select: { ownerId: true } } } });
    if (!rig) throw notFound('rig', 'rig_id');
    return rig;
  }

  /**
   * Resolves an integration + repository id into what the rig stores; enforces ownership.
   * `readOnly`: a lite GitHub installation, whose tokens can only read.
   */
  async function connection(
    ownerId: string,
    integrationId: string,
    repositoryId: number | undefined,
  ): Promise<{ data: Connection; readOnly: boolean }> {
    if (repositoryId === undefined) throw badRequest('repository_id', 'repository_id: is required with platform_integration_id');
    const row = await db.platformIntegration.findUnique({ where: { id: integrationId } });
    if (!row) throw notFound('integration', 'platform_integration_id');
    if (row.ownerId !== ownerId) throw forbidden("the integration belongs to another owner than the rig's town", 'platform_integration_id');
    if (row.status !== 'active') {
      throw conflict(
        'integration_not_active',
        `the integration is ${row.status}: fix it before connecting rigs to it`,
        'platform_integration_id',
      );
    }
    const repo = await findRepository(row, repositoryId);
    if (!repo) {
      throw unprocessable('repository_not_accessible', `repository ${repositoryId} is not accessible to this integration`, 'repository_id');
    }
    return {
      data: {
        platformIntegrationId: row.id,
        repositoryId: BigInt(repo.id),
        repositoryFullName: repo.full_name,
        gitUrl: repo.clone_url, // as the provider gives it
        defaultBranch: repo.default_branch,
      },
      readOnly: isReadOnly(row),
    };
  }

  const isReadOnly = (row: Pick<PlatformIntegration, 'provider' | 'githubAppType'>) =>
    row.provider === 'github' && row.githubAppType === 'lite';

  /** The access to store, or a 400 naming `access`. */
  function access(asked: Access | undefined, readOnly: boolean, current: Access): Access {
    const decided = decideAccess(asked, readOnly, current);
    if ('problem' in decided) throw badRequest('access', `access: ${decided.problem}`);
    return decided.access;
  }

  /** Looks in the cache first; a miss refreshes once (the repository may be new). */
  async function findRepository(row: PlatformIntegration, repositoryId: number): Promise<PlatformRepository | undefined> {
    const cached = (row.repositories as unknown as PlatformRepository[]).find((r) => r.id === repositoryId);
    if (cached) return cached;
    const synced = await deps.integrations.syncRepositories(row);
    return (synced.repositories as unknown as PlatformRepository[]).find((r) => r.id === repositoryId);
  }

  function manual(gitUrl: string, defaultBranch: string | undefined) {
    const problem = gitUrlProblem(gitUrl);
    if (problem) throw badRequest('git_url', `git_url: ${problem}`);
    const branch = defaultBranch ?? 'main';
    const bad = branchProblem(branch);
    if (bad) throw badRequest('default_branch', `default_branch: ${bad}`);
    return { gitUrl, defaultBranch: branch };
  }

  async function save<T>(op: () => Promise<T>): Promise<T> {
    try {
      return await op();
    } catch (err) {
      if (isUniqueViolation(err)) throw conflict('rig_exists', 'a rig with this name already exists in the town', 'name');
      throw err;
    }
  }

  type LoadedRig = Awaited<ReturnType<typeof getRig>>;

  /** What a PATCH changes on `rig` as read, or a 4xx naming the bad field. Writes nothing. */
  async function plan(rig: LoadedRig, body: z.infer<typeof patchRigBody>): Promise<Partial<Rig>> {
    let data: Partial<Rig> = {};
    // Whether the rig's integration after this update is read-only (undefined: unchanged, not looked up yet).
    let readOnly: boolean | undefined;
    if (body.platform_integration_id) {
      if (body.git_url !== undefined) throw badRequest('git_url', 'git_url: follows the repository when connecting through an integration');
      ({ data, readOnly } = await connection(rig.town.ownerId, body.platform_integration_id, body.repository_id));
    } else if (body.platform_integration_id === null) {
      data = { platformIntegrationId: null, repositoryId: null, repositoryFullName: null };
      readOnly = false;
    } else if (body.repository_id !== undefined) {
      if (!rig.platformIntegrationId)
        throw badRequest('repository_id', 'repository_id: the rig has no integration; give platform_integration_id too');
      ({ data, readOnly } = await connection(rig.town.ownerId, rig.platformIntegrationId, body.repository_id));
    }
    if (readOnly === undefined && rig.platformIntegrationId && body.access === 'write') {
      const current = await db.platformIntegration.findUnique({
        where: { id: rig.platformIntegrationId },
        select: { provider: true, githubAppType: true },
      });
      readOnly = current !== null && isReadOnly(current);
    }
    const newAccess = access(body.access, readOnly ?? false, rig.access);
    if (newAccess !== rig.access) data.access = newAccess;
    const connected = data.platformIntegrationId ?? (body.platform_integration_id === null ? null : rig.platformIntegrationId);
    // Only what was sent is validated: a provider's clone URL kept from a connection is used as
    // given and need not pass the manual-URL rules just because the branch changes.
    if (body.git_url !== undefined) {
      if (connected) throw badRequest('git_url', 'git_url: cannot be set on a rig connected through an integration');
      const problem = gitUrlProblem(body.git_url);
      if (problem) throw badRequest('git_url', `git_url: ${problem}`);
      data.gitUrl = body.git_url;
    }
    if (body.default_branch !== undefined && !data.defaultBranch) {
      const bad = branchProblem(body.default_branch);
      if (bad) throw badRequest('default_branch', `default_branch: ${bad}`);
      data.defaultBranch = body.default_branch;
    }
    if (body.name !== undefined) data.name = body.name;
    return data;
  }

  /** Whether the change moves the rig to another project or integration (or none). */
  const movesRig = (rig: LoadedRig, data: Partial<Rig>) =>
    (data.platformIntegrationId !== undefined && data.platformIntegrationId !== rig.platformIntegrationId) ||
    (data.repositoryId !== undefined && data.repositoryId !== rig.repositoryId);

  /**
   * Writes `data` if the rig still has the connection and access `data` was decided on; null when
   * another change landed in between. Another project or integration (or none), or another access:
   * the rig's GitLab project token (whose scope follows the access) is let go in the same
   * transaction, then revoked, so the next mint makes one that fits.
   */
  async function write(rig: LoadedRig, data: Partial<Rig>) {
    return save(() =>
      db.$transaction(async (tx) => {
        const [now] = await tx.$queryRaw<{ integration: string | null; repository: bigint | null; access: string }[]>`
          SELECT platform_integration_id::text AS integration, repository_id AS repository, access::text AS access
            FROM gastown_rigs WHERE id = ${rig.id}::uuid FOR UPDATE`;
        if (!now) throw notFound('rig', 'rig_id');
        if (now.integration !== rig.platformIntegrationId || now.repository !== rig.repositoryId || now.access !== rig.access) {
          return null;
        }
        return {
          updated: await tx.rig.update({ where: { id: rig.id }, data }),
          detached: movesRig(rig, data) || data.access !== undefined ? await deps.projectTokens.detach(tx, rig.id) : [],
        };
      }),
    );
  }

  /** After the write: revoke what was let go, and tell running dispatches. */
  async function settle(rig: LoadedRig, data: Partial<Rig>, detached: Awaited<ReturnType<Deps['projectTokens']['detach']>>) {
    await deps.projectTokens.revoke(detached);
    // The same connection again asks GitLab anew.
    if (data.platformIntegrationId !== undefined && !movesRig(rig, data)) await deps.projectTokens.retryNow({ rigId: rig.id });
    if (data.platformIntegrationId !== undefined || data.gitUrl !== undefined || data.repositoryId !== undefined) {
      await deps.notifier.rigChanged(rig.id, 'rig connection changed');
    } else if (data.access !== undefined) {
      await deps.notifier.rigChanged(rig.id, `rig access changed to ${data.access}`);
    }
  }

  return {
    getRig,

    async create(townId: string, body: z.infer<typeof createRigBody>) {
      const town = await db.town.findUnique({ where: { id: townId } });
      if (!town) throw notFound('town', 'town_id');
      let data;
      let readOnly = false;
      // null means "no integration" (a manual rig), as the rig itself shows it.
      if (body.platform_integration_id != null) {
        if (body.git_url !== undefined)
          throw badRequest('git_url', 'git_url: give either platform_integration_id + repository_id or git_url, not both');
        ({ data, readOnly } = await connection(town.ownerId, body.platform_integration_id, body.repository_id));
      } else if (body.git_url !== undefined) {
        if (body.repository_id !== undefined) throw badRequest('repository_id', 'repository_id: needs platform_integration_id');
        data = manual(body.git_url, body.default_branch);
      } else {
        throw badRequest('git_url', 'git_url: is required unless platform_integration_id and repository_id are given');
      }
      const rigAccess = access(body.access, readOnly, 'write');
      return presentRig(await save(() => db.rig.create({ data: { townId, name: body.name, access: rigAccess, ...data } })));
    },

    async detail(rigId: string) {
      const rig = await getRig(rigId);
      const integration = rig.platformIntegrationId
        ? await db.platformIntegration.findUnique({ where: { id: rig.platformIntegrationId } })
        : null;
      let source: 'integration' | 'town_git_auth' | 'none' = integration ? 'integration' : 'none';
      if (!integration) {
        const token = await db.townGitAuth.findUnique({ where: { townId_host: { townId: rig.townId, host: gitHost(rig.gitUrl) } } });
        if (token) source = 'town_git_auth';
      }
      const projectToken =
        integration?.provider === 'gitlab'
          ? await db.rigProjectToken.findUnique({
              where: { rigId },
              select: { status: true, fallbackReason: true, usableUntil: true, rotatedAt: true },
            })
          : null;
      return {
        ...presentRig(rig),
        integration: integration
          ? { id: integration.id, provider: integration.provider, account: integration.accountLogin, status: integration.status }
          : null,
        credential_source: source,
        ...rigScope(integration?.provider ?? null, source, projectToken),
        project_token_state:
          integration?.provider === 'gitlab'
            ? {
                status: projectToken?.status ?? ('none' as const),
                usable_until: projectToken?.usableUntil?.toISOString() ?? null,
                rotated_at: projectToken?.rotatedAt?.toISOString() ?? null,
              }
            : null,
      };
    },

    /**
     * Reconnects, disconnects or edits a rig; running dispatches mint again from the new source.
     * The change is decided on the rig as read, then written only if the rig still reads so under
     * its row lock (else decided again, at most 3 times): two PATCHes at once could otherwise each
     * pass on what the other was changing, a lite connection and an `access: write` ending as a
     * lite rig that asks for write tokens.
     */
    async update(rigId: string, body: z.infer<typeof patchRigBody>) {
      for (let attempt = 1; ; attempt++) {
        const rig = await getRig(rigId);
        const data = await plan(rig, body);
        const written = await write(rig, data);
        if (written) {
          await settle(rig, data, written.detached);
          return presentRig(written.updated);
        }
        if (attempt === 3) throw conflict('rig_changed', 'the rig kept changing while this request ran: try again', 'rig_id');
      }
    },

    /** Deletes a rig without running dispatches (and its ended ones); its GitLab project token is revoked. */
    async remove(rigId: string) {
      const detached = await db.$transaction(async (tx) => {
        // Locked, so no dispatch can be created for it until this commits (the insert's key check waits).
        const [found] = await tx.$queryRaw<unknown[]>`SELECT 1 FROM gastown_rigs WHERE id = ${rigId}::uuid FOR UPDATE`;
        if (!found) throw notFound('rig', 'rig_id');
        const running = await tx.agentDispatch.count({ where: { rigId, status: { notIn: [...ENDED_STATUSES] } } });
        if (running > 0) {
          throw conflict('rig_has_running_dispatches', `the rig has ${running} running dispatch(es): stop them first`, 'rig_id');
        }
        const ids = await deps.projectTokens.detach(tx, rigId);
        await tx.rig.delete({ where: { id: rigId } });
        return ids;
      });
      await deps.projectTokens.revoke(detached);
    },
  };
}

export type RigService = ReturnType<typeof createRigService>;
