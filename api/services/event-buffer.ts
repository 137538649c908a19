// Pulls are audited without putting Postgres on the hot path: each flush (once a second, and on
// close) writes one `pulled` row per dispatch and generation pulled in that second, with the
// count and the time of the last pull. Every pull is accounted for; a container hammering the
// route costs one row a second, not one per request. Bounded: a buffer that fills (more distinct
// leases pulled in a second than `maxPending`) is flushed at once, and while that flush is still
// writing, pulls of further leases are counted as dropped and logged instead of held. A write that
// fails (Postgres restarting, a deadlock with a delete) puts its rows back, merged with the pulls
// since, and the next flush writes them; rows that keep failing for `retryForMs` are given up and
// logged. Rows put back count against `maxPending` like new ones.
import type { Db } from '../../lib/db';
import type { Logger } from '../../lib/logger';
import type { CredentialSource } from '../../workflows/git-token-types';

export interface PulledLease {
  dispatchId: string;
  source: CredentialSource;
  generation: number;
  fingerprint: string;
  expiresAtMs: number | null;
}

interface Pending {
  lease: PulledLease;
  count: number;
  lastAt: number;
  /** When a write of these pulls first failed. */
  failedSince?: number;
}

export function createEventBuffer(deps: { db: Db; logger?: Logger; flushMs?: number; maxPending?: number; retryForMs?: number }) {
  const maxPending = deps.maxPending ?? 10_000;
  const retryForMs = deps.retryForMs ?? 300_000;
  // Keyed by the lease object itself: the cache hands out one object per dispatch generation.
  let pending = new Map<PulledLease, Pending>();
  let flushing: Promise<void> = Promise.resolve();
  let early: Promise<void> | undefined;
  let dropped = 0;

  async function flush(): Promise<void> {
    if (dropped > 0) {
      deps.logger?.warn({ dropped }, 'pull audit buffer was full: pulls not audited');
      dropped = 0;
    }
    if (pending.size === 0) return;
    const batch = [...pending.values()];
    pending = new Map();
    try {
      await writeBatch(batch);
    } catch (err) {
      const { kept, givenUp, overflow } = putBack(batch, Date.now());
      deps.logger?.warn(
        { err: { message: (err as Error).message }, rows: batch.length, kept, given_up: givenUp, dropped: overflow },
        'could not write pull events: kept for the next flush',
      );
    }
  }

  /** Puts a failed batch back into `pending`, merged with what was pulled since, within the bounds. */
  function putBack(batch: Pending[], now: number) {
    let kept = 0;
    let givenUp = 0;
    let overflow = 0;
    for (const p of batch) {
      const failedSince = p.failedSince ?? now;
      if (now - failedSince >= retryForMs) {
        givenUp += p.count;
        continue;
      }
      const since = pending.get(p.lease);
      if (since) {
        since.count += p.count;
        since.lastAt = Math.max(since.lastAt, p.lastAt);
        since.failedSince = Math.min(since.failedSince ?? now, failedSince);
      } else if (pending.size < maxPending) {
        pending.set(p.lease, { ...p, failedSince });
      } else {
        overflow += p.count;
        continue;
      }
      kept += p.count;
    }
    return { kept, givenUp, overflow };
  }

  /**
   * Writes the rows under the event order rule (lib/lease-statements.ts): the dispatches' rows are
   * locked first, in id order so two API instances flushing at once cannot deadlock. Rows of a
   * dispatch deleted meanwhile are left out instead of failing the batch.
   */
  async function writeBatch(batch: Pending[]): Promise<void> {
    const ids = [...new Set(batch.map(({ lease }) => lease.dispatchId))];
    await deps.db.$transaction(async (tx) => {
      const locked = await tx.$queryRaw<Array<{ id: string }>>`
        SELECT id::text FROM agent_dispatches WHERE id = ANY(${ids}::uuid[]) ORDER BY id FOR NO KEY UPDATE`;
      const present = new Set(locked.map(({ id }) => id));
      await tx.tokenEvent.createMany({
        data: batch
          .filter(({ lease }) => present.has(lease.dispatchId.toLowerCase()))
          .map(({ lease, count, lastAt }) => ({
            dispatchId: lease.dispatchId,
            kind: 'pulled' as const,
            source: lease.source,
            generation: lease.generation,
            fingerprint: lease.fingerprint,
            expiresAt: lease.expiresAtMs === null ? null : new Date(lease.expiresAtMs),
            detail: count === 1 ? null : `${count} pulls`,
            at: new Date(lastAt),
          })),
      });
    });
  }

  const timer = setInterval(() => {
    flushing = flushing.then(flush);
  }, deps.flushMs ?? 1000);
  timer.unref();

  return {
    /** Counts one pull of `lease`. */
    add(lease: PulledLease): void {
      const p = pending.get(lease);
      if (p) {
        p.count += 1;
        p.lastAt = Date.now();
        return;
      }
      if (pending.size >= maxPending) {
        if (early) {
          dropped += 1;
          return;
        }
        // Full before the timer: write now (the batch leaves the map at once), once at a time.
        flushing = flushing.then(flush);
        early = flushing.finally(() => (early = undefined));
      }
      pending.set(lease, { lease, count: 1, lastAt: Date.now() });
    },
    /** Leases waiting to be written, and pulls dropped since the last flush (bounded by maxPending). */
    get pending() {
      return { leases: pending.size, dropped };
    },
    /** Writes what is pending now. */
    flush(): Promise<void> {
      flushing = flushing.then(flush);
      return flushing;
    },
    /** Writes what is pending, once: rows a failed write puts back are logged as lost. */
    async close(): Promise<void> {
      clearInterval(timer);
      flushing = flushing.then(flush);
      await flushing;
      if (pending.size > 0) {
        const pulls = [...pending.values()].reduce((n, p) => n + p.count, 0);
        deps.logger?.warn({ rows: pending.size, pulls }, 'pull events not written at close');
        pending = new Map();
      }
    },
  };
}
