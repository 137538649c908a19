// Tells running dispatch workflows that their credentials changed (integration status, rig
// connection, town git-auth, or a rotated GitLab grant), so they mint and push again within
// seconds instead of waiting for their next scheduled refresh. A change found by a dispatch's own
// mint leaves that dispatch out (`exceptDispatchId`): it holds the new token already, and a signal
// to a run whose workflow task is in flight waits at the server while that task is a retried one,
// which a mint (a local activity inside the task) waiting on the signal would hold for 8 s.
import type { Client } from '@temporalio/client';
import type { Db } from './db';
import type { Logger } from './logger';
import { ENDED_STATUSES } from '../workflows/git-token-types';
import { credentialsChangedSignal } from '../workflows/git-token-workflow';
import { signalCurrentRun } from './temporal';

export interface DispatchNotifier {
  integrationChanged(integrationId: string, reason: string, exceptDispatchId?: string): Promise<number>;
  rigChanged(rigId: string, reason: string, exceptDispatchId?: string): Promise<number>;
  /** Only the integration's dispatches waiting in `credential_error` (GitHub says something was fixed). */
  integrationFixed(integrationId: string, reason: string): Promise<number>;
  townChanged(townId: string, reason: string): Promise<number>;
}

/** Waits before signalling again a run Temporal could not be asked about (about 2 minutes in all). */
const RETRY_MS = [1000, 2000, 4000, 8000, 15_000, 30_000, 60_000];

export function createDispatchNotifier(deps: {
  db: Db;
  temporal: Pick<Client, 'workflow'>;
  logger?: Pick<Logger, 'warn'>;
  retryMs?: number[];
}): DispatchNotifier {
  const { db, temporal } = deps;
  const retryMs = deps.retryMs ?? RETRY_MS;

  const signal = (workflowId: string, reason: string) =>
    signalCurrentRun(temporal.workflow.getHandle(workflowId), credentialsChangedSignal, { reason });

  /**
   * A signal Temporal did not take (unreachable, overloaded) is sent again in the background: the
   * change is committed and the caller answered, and without the signal a dispatch would go on
   * with its old token (one that could write, after a switch to read) until its next refresh.
   */
  function retryLater(workflowId: string, reason: string, attempt: number): void {
    setTimeout(() => {
      signal(workflowId, reason).catch((err: unknown) => {
        if (attempt + 1 < retryMs.length) return retryLater(workflowId, reason, attempt + 1);
        deps.logger?.warn(
          { workflowId, reason, err: { name: (err as Error)?.name } },
          'could not tell a running dispatch that its credentials changed; it picks the change up at its next refresh',
        );
      });
    }, retryMs[attempt]).unref();
  }

  async function signalAll(where: object, reason: string, exceptDispatchId?: string): Promise<number> {
    const running = await db.agentDispatch.findMany({
      where: { status: { notIn: [...ENDED_STATUSES] }, ...where, ...(exceptDispatchId ? { id: { not: exceptDispatchId } } : {}) },
      select: { workflowId: true },
    });
    const results = await Promise.allSettled(running.map((d) => signal(d.workflowId, reason)));
    results.forEach((r, i) => r.status === 'rejected' && retryLater(running[i].workflowId, reason, 0));
    // A workflow that already finished cannot be signalled; that is not an error here.
    return results.filter((r) => r.status === 'fulfilled' && r.value).length;
  }

  return {
    integrationChanged: (integrationId, reason, exceptDispatchId) =>
      signalAll({ rig: { platformIntegrationId: integrationId } }, reason, exceptDispatchId),
    rigChanged: (rigId, reason, exceptDispatchId) => signalAll({ rigId }, reason, exceptDispatchId),
    integrationFixed: (integrationId, reason) =>
      signalAll({ rig: { platformIntegrationId: integrationId }, status: 'credential_error' }, reason),
    townChanged: (townId, reason) => signalAll({ rig: { townId, platformIntegrationId: null } }, reason),
  };
}
