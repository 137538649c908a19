// Tells running dispatch workflows that their credentials changed (integration status, rig
// connection, town git-auth, or a rotated GitLab grant), so they mint and push again within
// seconds instead of waiting for their next scheduled refresh. A change found by a dispatch's own
// mint leaves that dispatch out (`exceptDispatchId`): it holds the new token already, and a signal
// to a run whose workflow task is in flight waits at the server while that task is a retried one,
// which a mint (a local activity inside the task) waiting on the signal would hold for 8 s.
import type { Client } from '@temporalio/client';
import type { Db } from './db';
import { ENDED_STATUSES } from '../workflows/git-token-types';
import { credentialsChangedSignal } from '../workflows/git-token-workflow';
import { signalCurrentRun } from './temporal';

export interface DispatchNotifier {
  integrationChanged(integrationId: string, reason: string, exceptDispatchId?: string): Promise<number>;
  rigChanged(rigId: string, reason: string, exceptDispatchId?: string): Promise<number>;
  townChanged(townId: string, reason: string): Promise<number>;
}

export function createDispatchNotifier(deps: { db: Db; temporal: Pick<Client, 'workflow'> }): DispatchNotifier {
  const { db, temporal } = deps;

  async function signalAll(where: object, reason: string, exceptDispatchId?: string): Promise<number> {
    const running = await db.agentDispatch.findMany({
      where: { ...where, status: { notIn: [...ENDED_STATUSES] }, ...(exceptDispatchId ? { id: { not: exceptDispatchId } } : {}) },
      select: { workflowId: true },
    });
    const results = await Promise.allSettled(
      running.map((d) => signalCurrentRun(temporal.workflow.getHandle(d.workflowId), credentialsChangedSignal, { reason })),
    );
    // A workflow that already finished cannot be signalled; that is not an error here.
    return results.filter((r) => r.status === 'fulfilled' && r.value).length;
  }

  return {
    integrationChanged: (integrationId, reason, exceptDispatchId) =>
      signalAll({ rig: { platformIntegrationId: integrationId } }, reason, exceptDispatchId),
    rigChanged: (rigId, reason, exceptDispatchId) => signalAll({ rigId }, reason, exceptDispatchId),
    townChanged: (townId, reason) => signalAll({ rig: { townId, platformIntegrationId: null } }, reason),
  };
}
