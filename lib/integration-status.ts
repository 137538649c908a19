// Integration status transitions, shared by the webhook handler, registrations and the token
// activities (which learn about suspensions from GitHub itself when a webhook was missed).
import type { Db } from './db';

export type IntegrationStatus = 'active' | 'suspended' | 'deleted' | 'reconnect_required';

/** Sets the status when it differs; returns true when it changed. `deleted` is final. */
export async function setIntegrationStatus(
  db: Db,
  integrationId: string,
  status: IntegrationStatus,
  reason: string | null,
): Promise<boolean> {
  const { count } = await db.platformIntegration.updateMany({
    where: { id: integrationId, status: { notIn: status === 'deleted' ? ['deleted'] : ['deleted', status] } },
    data: { status, statusReason: reason, statusChangedAt: new Date() },
  });
  return count > 0;
}
