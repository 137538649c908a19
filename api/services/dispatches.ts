// Agent dispatches: record one, issue its container token (shown once), start its token workflow.
import { randomUUID } from 'node:crypto';
import type { Core } from '../../lib/core';
import { containerUrlProblem } from '../../lib/container-url-policy';
import { endAsGone } from '../../lib/dispatch-revocation';
import { isForeignKeyViolation } from '../../lib/db';
import { signalCurrentRun } from '../../lib/temporal';
import { containerTokenContext } from '../../lib/secret-contexts';
import { newOpaqueToken, sha256Hex } from '../../lib/secrets';
import { gitTokenWorkflow, gitTokenWorkflowId, stopSignal } from '../../workflows/git-token-workflow';
import { ENDED_STATUSES, type GitTokenWorkflowInput } from '../../workflows/git-token-types';
import { CredentialSourceKey, DispatchStatusKey, RepositoryKey, RigIdKey, TownIdKey } from '../../workflows/search-attributes';
import { AppError, badRequest, notFound } from '../errors';
import { presentDispatch, presentEvent } from './presenters';
import { repository, runMetadata } from './run-metadata';

type Deps = Pick<
  Core,
  'db' | 'secrets' | 'temporal' | 'config' | 'leases' | 'revocations' | 'containerUrlPolicy' | 'github' | 'metrics'
> & {
  /** Extra workflow input (tests shorten cycles per run, recheck intervals). */
  workflowDefaults?: Partial<GitTokenWorkflowInput>;
};

/**
 * Where a new dispatch waits (README, "How the token path works"): `queues` for this build's workers,
 * and `sleeping` for a worker of an earlier build that picks the run up during a rolling deploy.
 */
function sleepingInput(config: Core['config']): Pick<GitTokenWorkflowInput, 'queues' | 'sleeping'> {
  const { taskQueue, hotTaskQueue, sleepingTaskQueue } = config.temporal;
  const afterSeconds = config.worker.sleepingAfterSeconds;
  if (afterSeconds === 0) return {};
  return {
    queues: { current: taskQueue, main: taskQueue, hot: hotTaskQueue, afterSeconds },
    sleeping: { taskQueue: sleepingTaskQueue, afterSeconds },
  };
}

/** An opaque cursor for the events after `id`. */
export function encodeEventCursor(id: bigint): string {
  return Buffer.from(`ev1:${id}`).toString('base64url');
}

/** The id a cursor points after; a 400 naming `cursor` when it is not one of ours. */
export function decodeEventCursor(cursor: string): bigint {
  const m = /^ev1:(\d{1,19})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  const id = m ? BigInt(m[1]) : -1n;
  if (!m || id >= 2n ** 63n || encodeEventCursor(id) !== cursor) throw badRequest('cursor', 'cursor: is not a cursor this API gave out');
  return id;
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
      // After the rig check, so an unknown rig costs no DNS lookup.
      const problem = await containerUrlProblem(body.container_url, deps.containerUrlPolicy);
      if (problem) throw badRequest('container_url', `container_url: ${problem}`);

      const id = randomUUID();
      const containerToken = newOpaqueToken('rcc');
      const workflowId = gitTokenWorkflowId(id);
      await db.agentDispatch
        .create({
          data: {
            id,
            rigId,
            containerUrl: body.container_url.replace(/\/+$/, ''),
            containerTokenHash: sha256Hex(containerToken),
            containerTokenEnc: deps.secrets.encrypt(containerToken, containerTokenContext(id)),
            workflowId,
          },
        })
        .catch((err: unknown) => {
          // The rig was deleted since it was read: as if it had been gone already.
          throw isForeignKeyViolation(err) ? notFound('rig', 'rig_id') : err;
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
              ...sleepingInput(config),
              ...deps.workflowDefaults,
            },
          ],
          typedSearchAttributes: [
            { key: RigIdKey, value: rigId },
            { key: TownIdKey, value: rig.townId },
            { key: CredentialSourceKey, value: 'none' },
            { key: DispatchStatusKey, value: 'starting' },
            { key: RepositoryKey, value: repository(rig) },
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
      const signalled = await signalCurrentRun(temporal.workflow.getHandle(row.workflowId), stopSignal, {
        reason: 'stopped through the API',
      }).catch(() => {
        throw new AppError(503, 'temporal_unavailable', 'could not reach the token workflow; try again');
      });
      if (signalled) return;
      // The workflow is gone (terminated by an operator): end the dispatch here, revoking what it held.
      await endAsGone(deps, dispatchId);
    },

    /**
     * One page of the dispatch's events in the order they were recorded (oldest first). The cursor
     * is the last id returned, and a dispatch's events commit in id order (the event order rule,
     * lib/lease-statements.ts), so rows recorded while a client pages are never skipped.
     */
    async events(dispatchId: string, page: { limit: number; cursor?: string }) {
      const after = page.cursor === undefined ? undefined : decodeEventCursor(page.cursor);
      await getRow(dispatchId);
      const rows = await db.tokenEvent.findMany({
        where: { dispatchId, ...(after !== undefined ? { id: { gt: after } } : {}) },
        orderBy: { id: 'asc' },
        take: page.limit + 1,
      });
      const more = rows.length > page.limit;
      const events = more ? rows.slice(0, page.limit) : rows;
      return { events: events.map(presentEvent), next_cursor: more ? encodeEventCursor(events[events.length - 1].id) : null };
    },
  };
}

export type DispatchService = ReturnType<typeof createDispatchService>;
