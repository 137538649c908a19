// Retention of `pulled` audit rows. Pulls are audited at up to one row a second per dispatch, so
// they are the only events without a natural bound: rows older than MAX_AGE go, and each dispatch
// keeps its newest MAX_PER_DISPATCH. Every other kind (one per mint, push, failure) is kept. The
// API sweeps once a minute, in batches, so a sweep never holds long locks on a busy table.
import type { Db } from '../../lib/db';
import type { Logger } from '../../lib/logger';

export interface PullRetention {
  maxAgeMs: number;
  maxPerDispatch: number;
  /** Rows per DELETE statement, and statements per rule per sweep. */
  batchSize: number;
  maxBatches: number;
  /** Dispatches checked against the per-dispatch cap per sweep (those that pulled since the last one). */
  maxDispatches: number;
}

export const PULL_RETENTION: PullRetention = {
  maxAgeMs: 30 * 24 * 3600_000,
  maxPerDispatch: 1000,
  batchSize: 5000,
  maxBatches: 10,
  maxDispatches: 1000,
};

/** Deletes in batches until a batch comes back short or the budget is spent; returns rows deleted. */
async function inBatches(r: PullRetention, batch: (limit: number) => Promise<number>): Promise<number> {
  let deleted = 0;
  for (let i = 0; i < r.maxBatches; i++) {
    const n = await batch(r.batchSize);
    deleted += n;
    if (n < r.batchSize) break;
  }
  return deleted;
}

/**
 * One sweep: `pulled` rows past the age limit, then those past the per-dispatch cap of every
 * dispatch that pulled at or after `since` (the previous sweep's start). Returns rows deleted.
 */
export async function sweepPullEvents(db: Db, opts: { retention?: PullRetention; since: Date; now?: number }) {
  const r = opts.retention ?? PULL_RETENTION;
  const cutoff = new Date((opts.now ?? Date.now()) - r.maxAgeMs);
  const old = await inBatches(
    r,
    (limit) => db.$executeRaw`DELETE FROM token_events WHERE id IN (
      SELECT id FROM token_events WHERE kind = 'pulled' AND at < ${cutoff} LIMIT ${limit})`,
  );
  const recent = await db.$queryRaw<Array<{ dispatch_id: string }>>`
    SELECT DISTINCT dispatch_id::text FROM token_events WHERE kind = 'pulled' AND at >= ${opts.since} LIMIT ${r.maxDispatches}`;
  let overCap = 0;
  for (const { dispatch_id: dispatchId } of recent) {
    overCap += await inBatches(
      r,
      (limit) => db.$executeRaw`DELETE FROM token_events WHERE id IN (
        SELECT id FROM token_events WHERE dispatch_id = ${dispatchId}::uuid AND kind = 'pulled'
        ORDER BY id DESC OFFSET ${r.maxPerDispatch} LIMIT ${limit})`,
    );
  }
  return { old, overCap };
}

/** Runs sweepPullEvents every `intervalMs` until stopped; failures are logged and retried next time. */
export function startPullEventSweeper(deps: { db: Db; logger?: Logger; intervalMs?: number; retention?: PullRetention }) {
  const r = deps.retention ?? PULL_RETENTION;
  let since = new Date(Date.now() - r.maxAgeMs); // the first sweep looks at every dispatch still holding pulls
  let running: Promise<void> = Promise.resolve();
  const timer = setInterval(() => {
    running = running.then(async () => {
      const started = new Date();
      try {
        const deleted = await sweepPullEvents(deps.db, { retention: r, since });
        since = new Date(started.getTime() - 60_000); // overlap: rows are flushed up to a second late
        if (deleted.old + deleted.overCap > 0) deps.logger?.info(deleted, 'pull events past retention deleted');
      } catch (err) {
        deps.logger?.warn({ err: { message: (err as Error).message } }, 'pull event retention sweep failed');
      }
    });
  }, deps.intervalMs ?? 60_000);
  timer.unref();
  return {
    async stop(): Promise<void> {
      clearInterval(timer);
      await running;
    },
  };
}
