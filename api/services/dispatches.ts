// Agent dispatches: record one, issue its container token (shown once), start its token workflow.
import { randomUUID } from 'node:crypto';
import { WorkflowNotFoundError } from '@temporalio/client';
import type { Core } from '../../lib/core';
import { containerTokenContext } from '../../lib/secret-contexts';
import { newOpaqueToken, sha256Hex } from '../../lib/secrets';
import { gitTokenWorkflow, gitTokenWorkflowId, stopSignal } from '../../workflows/git-token-workflow';
import { ENDED_STATUSES, type GitTokenWorkflowInput } from '../../workflows/git-token-types';
import { CredentialSourceKey, DispatchStatusKey, RigIdKey, TownIdKey } from '../../workflows/search-attributes';
import { AppError, badRequest, notFound } from '../errors';
import { presentDispatch, presentEvent } from './presenters';
import { runMetadata } from './run-metadata';

type Deps = Pick<Core, 'db' | 'secrets' | 'temporal' | 'config' | 'leases'> & {
  /** Extra workflow input (tests shorten cycles per run, recheck intervals). */
  workflowDefaults?: Partial<GitTokenWorkflowInput>;
};

/** Why a container URL is refused, or null. */
export function containerUrlProblem(raw: string): string | null {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return 'must be a URL like http://agent-123:8787';
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return 'must be an http(s) URL';
  if (url.username || url.password) return 'must not contain credentials';
  if (url.search || url.hash) return 'must not contain a query or fragment';
  return null;
}

export function createDispatchService(deps: Deps) {
  const { db, temporal, config } = deps;

  async function getRow(dispatchId: string) {
    const row = await db.agentDispatch.findUnique({ where: { id: dispatchId } });
    if (!row) throw notFound('dispatch', 'dispatch_id');
    return row;
  }

  return {
    async create(rigId: string, body: { container_url: string }) {
      const problem = containerUrlProblem(body.container_url);
      if (problem) throw badRequest('container_url', `container_url: ${problem}`);
      const rig = await db.rig.findUnique({
        where: { id: rigId },
        select: {
          id: true,
          townId: true,
          name: true,
          gitUrl: true,
          repositoryFullName: true,
          integration: { select: { provider: true, githubAppType: true, accountLogin: true } },
        },
      });
      if (!rig) throw notFound('rig', 'rig_id');

      const id = randomUUID();
      const containerToken = newOpaqueToken('rcc');
      const workflowId = gitTokenWorkflowId(id);
      await db.agentDispatch.create({
        data: {
          id,
          rigId,
          containerUrl: body.container_url.replace(/\/+$/, ''),
          containerTokenHash: sha256Hex(containerToken),
          containerTokenEnc: deps.secrets.encrypt(containerToken, containerTokenContext(id)),
          workflowId,
        },
      });
      try {
        await temporal.workflow.start(gitTokenWorkflow, {
          workflowId,
          taskQueue: config.temporal.taskQueue,
          ...runMetadata(rig, id, config.publicUrl),
          args: [
            {
              dispatchId: id,
              rigId,
              townId: rig.townId,
              marginSeconds: config.tokenRefreshMarginSeconds,
              jitterMaxSeconds: config.refreshJitterMaxSeconds,
              ...deps.workflowDefaults,
            },
          ],
          typedSearchAttributes: [
            { key: RigIdKey, value: rigId },
            { key: TownIdKey, value: rig.townId },
            { key: CredentialSourceKey, value: 'none' },
            { key: DispatchStatusKey, value: 'starting' },
          ],
        });
      } catch {
        // Nothing half-written: without its workflow a dispatch would never get a token.
        await db.agentDispatch.delete({ where: { id } }).catch(() => undefined);
        throw new AppError(503, 'temporal_unavailable', 'could not start the token workflow; try again');
      }
      return { dispatch_id: id, workflow_id: workflowId, container_token: containerToken };
    },

    async get(dispatchId: string) {
      return presentDispatch(await getRow(dispatchId));
    },

    async listForRig(rigId: string) {
      const rows = await db.agentDispatch.findMany({ where: { rigId }, orderBy: { startedAt: 'desc' }, take: 100 });
      return { dispatches: rows.map(presentDispatch) };
    },

    /** Asks the workflow to stop (it revokes and records the end); idempotent. */
    async stop(dispatchId: string) {
      const row = await getRow(dispatchId);
      if (ENDED_STATUSES.includes(row.status)) return;
      try {
        await temporal.workflow.getHandle(row.workflowId).signal(stopSignal, { reason: 'stopped through the API' });
      } catch (err) {
        if (!(err instanceof WorkflowNotFoundError))
          throw new AppError(503, 'temporal_unavailable', 'could not reach the token workflow; try again');
        // The workflow is gone (terminated by an operator): record the end ourselves.
        await deps.leases.close(dispatchId, { status: 'stopped', reason: 'token workflow no longer exists' });
      }
    },

    async events(dispatchId: string) {
      await getRow(dispatchId);
      const rows = await db.tokenEvent.findMany({ where: { dispatchId }, orderBy: [{ at: 'asc' }, { id: 'asc' }] });
      return { events: rows.map(presentEvent) };
    },
  };
}

export type DispatchService = ReturnType<typeof createDispatchService>;
