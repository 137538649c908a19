// What a health probe asks of a process: Postgres and Temporal answer within 2 s each. The API's
// GET /healthz and the worker-only process's own /healthz (bin/repo-connect.ts) both use it.
import type { Connection } from '@temporalio/client';
import type { Db } from './db';
import { workflowServiceServing } from './temporal';

export type Reachability = 'ok' | 'down';

const PROBE_MS = 2000;

async function within<T>(ms: number, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('timeout')), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** Whether Postgres answers a query and Temporal's WorkflowService says it is serving. */
export async function reachability(deps: {
  db: Pick<Db, '$queryRaw'>;
  temporalConnection: Pick<Connection, 'withDeadline' | 'healthService'>;
}): Promise<{ postgres: Reachability; temporal: Reachability }> {
  const { db, temporalConnection } = deps;
  const [pg, tp] = await Promise.allSettled([
    within(PROBE_MS, db.$queryRaw`SELECT 1`),
    within(
      PROBE_MS,
      temporalConnection.withDeadline(Date.now() + PROBE_MS, () => workflowServiceServing(temporalConnection)),
    ),
  ]);
  return {
    postgres: pg.status === 'fulfilled' ? 'ok' : 'down',
    temporal: tp.status === 'fulfilled' && tp.value ? 'ok' : 'down',
  };
}
