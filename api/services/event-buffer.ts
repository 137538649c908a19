// Pulls are audited without putting Postgres on the hot path: each flush (once a second, and on
// close) writes one `pulled` row per dispatch and generation pulled in that second, with the
// count and the time of the last pull. Every pull is accounted for; a container hammering the
// route costs one row a second, not one per request. Bounded: a buffer that fills (more distinct
// leases pulled in a second than `maxPending`) is flushed at once, and while that flush is still
// writing, pulls of further leases are counted as dropped and logged instead of held.
//
// A write Postgres does not take for a passing reason (unreachable, restarting, a deadlock with a
// delete, a lock or transaction timeout) is tried again by the next flushes, for `retryForMs`:
// - failed before its COMMIT was sent, nothing of it was written: its rows go back into the
//   buffer, merged with the pulls since;
// - failed once its COMMIT was sent (the answer lost), it may have been written: its rows are kept
//   as they are and written again only where no row of that lease, time and count exists, so no pull is
//   counted twice.
// Those rows count against `maxPending`; while a write keeps failing, a full buffer waits for the
// timer instead of writing at once. A write refused for good (a statement Postgres rejects) is
// dropped and logged, as is what is given up.
import { isDatabaseUnavailable, isTransactionConflict, type Db } from '../../lib/db';
import type { Logger } from '../../lib/logger';
import type { CredentialSource } from '../../workflows/git-token-types';

export interface PulledLease {
  dispatchId: string;
  source: CredentialSource;
  generation: number;
  fingerprint: string;
  expiresAtMs: number | null;
}

/** Rows per INSERT: 8 parameters a row stay under Postgres's 65,535 per statement. */
const CREATE_SLICE = 4_000;

interface Pending {
  lease: PulledLease;
  count: number;
  lastAt: number;
  /** When a write of these pulls first failed. */
  failedSince?: number;
}

export function createEventBuffer(deps: {
  db: Db;
  logger?: Logger;
  flushMs?: number;
  maxPending?: number;
  retryForMs?: number;
  /** The clock of `retryForMs` (tests). */
  now?: () => number;
}) {
  const maxPending = deps.maxPending ?? 10_000;
  const retryForMs = deps.retryForMs ?? 300_000;
  const now = deps.now ?? Date.now;
  // Keyed by the lease object itself: the cache hands out one object per dispatch generation.
  let pending = new Map<PulledLease, Pending>();
  /** Rows of writes whose COMMIT went out unanswered: each is written once, or not at all. */
  let unsettled: Pending[] = [];
  let failing = false;
  let flushing: Promise<void> = Promise.resolve();
  let early: Promise<void> | undefined;
  let dropped = 0;

  async function flush(): Promise<void> {
    if (dropped > 0) {
      deps.logger?.warn({ dropped }, 'pull audit buffer was full: pulls not audited');
      dropped = 0;
    }
    if (pending.size === 0 && unsettled.length === 0) return;
    const fresh = [...pending.values()];
    const again = unsettled;
    pending = new Map();
    unsettled = [];
    let committing = false;
    try {
      await writeBatch(fresh, again, () => (committing = true));
      failing = false;
    } catch (err) {
      failing = true;
      const message = err instanceof Error ? err.message : String(err);
      const rows = fresh.length + again.length;
      if (!committing && !isDatabaseUnavailable(err) && !isTransactionConflict(err)) {
        deps.logger?.warn({ err: { message }, rows }, 'could not write pull events: dropped');
        return;
      }
      const outcome = keep(fresh, again, committing, now());
      deps.logger?.warn({ err: { message }, rows, ...outcome }, 'could not write pull events: kept to try again');
    }
  }

  /** Keeps a failed write's rows for the next flush, within `retryForMs` and `maxPending`. */
  function keep(fresh: Pending[], again: Pending[], committing: boolean, at: number) {
    const outcome = { kept: 0, given_up: 0, no_room: 0 };
    const place = (p: Pending, settled: boolean) => {
      const failedSince = p.failedSince ?? at;
      if (at - failedSince >= retryForMs) return void (outcome.given_up += p.count);
      const since = settled ? pending.get(p.lease) : undefined;
      if (since) {
        // Pulled again while the write failed: one row with both counts.
        since.count += p.count;
        since.lastAt = Math.max(since.lastAt, p.lastAt);
        since.failedSince = failedSince;
      } else if (pending.size + unsettled.length >= maxPending) {
        return void (outcome.no_room += p.count);
      } else if (settled) {
        pending.set(p.lease, { ...p, failedSince });
      } else {
        unsettled.push({ ...p, failedSince });
      }
      outcome.kept += p.count;
    };
    for (const p of again) place(p, false);
    for (const p of fresh) place(p, !committing);
    return outcome;
  }

  /**
   * Writes the rows under the event order rule (lib/lease-statements.ts): the dispatches' rows are
   * locked first, in id order so two API instances flushing at once cannot deadlock. Rows of a
   * dispatch deleted meanwhile are left out instead of failing the batch. Postgres's own timeouts
   * end a slow write before Prisma's transaction timeout could (which would roll back while a
   * statement of it is still queued). `committing` is called once everything but the COMMIT has run.
   */
  async function writeBatch(fresh: Pending[], again: Pending[], committing: () => void): Promise<void> {
    const ids = [...new Set([...fresh, ...again].map(({ lease }) => lease.dispatchId))];
    await deps.db.$transaction(
      async (tx) => {
        await tx.$queryRaw`SELECT set_config('lock_timeout', '5s', true), set_config('statement_timeout', '10s', true)`;
        const locked = await tx.$queryRaw<Array<{ id: string }>>`
          SELECT id::text FROM agent_dispatches WHERE id = ANY(${ids}::uuid[]) ORDER BY id FOR NO KEY UPDATE`;
        const present = new Set(locked.map(({ id }) => id));
        const rows = (batch: Pending[]) =>
          batch
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
            }));
        // Before the fresh rows, which could share a lease and millisecond with one of these.
        const unanswered = rows(again);
        if (unanswered.length > 0) {
          const written = await tx.$executeRaw`
            INSERT INTO token_events (dispatch_id, kind, source, generation, fingerprint, expires_at, detail, at)
            SELECT v.dispatch_id, 'pulled', v.source, v.generation, v.fingerprint, v.expires_at, v.detail, v.at
            FROM unnest(
              ${unanswered.map((r) => r.dispatchId)}::uuid[], ${unanswered.map((r) => r.source)}::text[]::"CredentialSource"[],
              ${unanswered.map((r) => r.generation)}::int[], ${unanswered.map((r) => r.fingerprint)}::varchar[],
              ${unanswered.map((r) => r.expiresAt?.toISOString() ?? null)}::timestamptz[], ${unanswered.map((r) => r.detail)}::text[],
              ${unanswered.map((r) => r.at.toISOString())}::timestamptz[]
            ) AS v(dispatch_id, source, generation, fingerprint, expires_at, detail, at)
            WHERE NOT EXISTS (
              SELECT 1 FROM token_events e
              WHERE e.dispatch_id = v.dispatch_id AND e.kind = 'pulled' AND e.generation = v.generation AND e.at = v.at
                AND e.detail IS NOT DISTINCT FROM v.detail)`;
          deps.logger?.info(
            { rows: unanswered.length, written, already_written: unanswered.length - written },
            'pull events of a write whose COMMIT went unanswered: settled',
          );
        }
        // One statement per slice: Prisma checks the transaction is still open before each.
        const data = rows(fresh);
        for (let i = 0; i < data.length; i += CREATE_SLICE) await tx.tokenEvent.createMany({ data: data.slice(i, i + CREATE_SLICE) });
        committing();
      },
      { timeout: 30_000, maxWait: 5_000 },
    );
  }

  /** Queues a flush after those queued; a tick of the timer queues none while one waits or runs. */
  let queued = 0;
  function schedule(): Promise<void> {
    queued += 1;
    flushing = flushing
      .then(flush)
      .catch((err: unknown) =>
        deps.logger?.warn({ err: { message: err instanceof Error ? err.message : String(err) } }, 'pull audit flush failed'),
      )
      .finally(() => (queued -= 1));
    return flushing;
  }

  const timer = setInterval(() => {
    if (queued === 0) void schedule();
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
      if (pending.size + unsettled.length >= maxPending) {
        if (early || failing) {
          dropped += 1;
          return;
        }
        // Full before the timer: write now (the batch leaves the map at once), once at a time.
        early = schedule().finally(() => (early = undefined));
      }
      pending.set(lease, { lease, count: 1, lastAt: Date.now() });
    },
    /** Rows waiting to be written, and pulls dropped since the last flush (bounded by maxPending). */
    get pending() {
      return { leases: pending.size + unsettled.length, dropped };
    },
    /** Writes what is pending now. */
    flush(): Promise<void> {
      return schedule();
    },
    /** Writes what is pending, once: what a failed write leaves is logged as lost. */
    async close(): Promise<void> {
      clearInterval(timer);
      await schedule();
      const left = [...pending.values(), ...unsettled];
      if (left.length > 0 || dropped > 0) {
        const pulls = left.reduce((n, p) => n + p.count, dropped);
        deps.logger?.warn({ rows: left.length, pulls }, 'pull events not written at close');
      }
      pending = new Map();
      unsettled = [];
      dropped = 0;
    },
  };
}
