// Containers pulling a token. A fresh lease comes from memory; a stale one makes the dispatch's
// workflow refresh (the `refreshNow` update), so the workflow stays the only writer of tokens and
// concurrent stale pulls share one refresh (single flight here, and again inside the workflow).
import { WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import type { Core } from '../../lib/core';
import type { CachedDispatch, CachedLease, LeaseCache } from '../../lib/lease-cache';
import { endIfWorkflowGone } from '../../lib/dispatch-revocation';
import { sha256Hex } from '../../lib/secrets';
import { refreshNowUpdate } from '../../workflows/git-token-workflow';
import { AppError } from '../errors';
import { createEventBuffer } from './event-buffer';
import { createRateLimiter, sourceKey } from './rate-limit';
import { createSingleFlight, SingleFlightFullError } from './single-flight';

type Deps = Pick<Core, 'db' | 'temporal' | 'config' | 'metrics' | 'logger' | 'github' | 'leases' | 'revocations'> & { cache: LeaseCache };

/**
 * Fresh enough to hand out without a refresh: more than the margin left, or for short-lived
 * tokens more than half their life (the workflow refreshes no later than that).
 */
export function isFresh(lease: CachedLease, marginMs: number, now: number): boolean {
  if (lease.expiresAtMs === null) return true;
  const lifetime = lease.expiresAtMs - lease.mintedAtMs;
  return lease.expiresAtMs - now > Math.min(marginMs, lifetime / 2);
}

/** How long a stale pull waits for the workflow's refresh (a mint plus its verification fit). */
const REFRESH_DEADLINE_MS = 30_000;
/** Dispatches refreshing for pulls at once, per API instance; more answer 503 and are retried. */
const MAX_REFRESHES_IN_FLIGHT = 10_000;
/** Container tokens this instance has found in Postgres, remembered (as hashes) past their cached copies. */
const MAX_KNOWN_TOKENS = 50_000;

const unauthorized = () => new AppError(401, 'unauthorized', 'unknown container token', undefined, { 'www-authenticate': 'Bearer' });

const rateLimited = (waitMs: number, message: string) =>
  new AppError(429, 'rate_limited', message, undefined, { 'retry-after': String(Math.max(1, Math.ceil(waitMs / 1000))) });

export function createPullService(deps: Deps) {
  const { cache, metrics } = deps;
  const marginMs = deps.config.tokenRefreshMarginSeconds * 1000;
  const perMinute = deps.config.pullRateLimitPerMinute;
  // Buckets are made for known container tokens only, and failed lookups count per source
  // address: random bearers cost neither a bucket each nor, past the limit, a Postgres lookup.
  const limiter = createRateLimiter({ perMinute });
  const failures = createRateLimiter({ perMinute, burst: perMinute, maxKeys: 10_000 });
  const events = createEventBuffer({ db: deps.db, logger: deps.logger });
  const refreshes = createSingleFlight<string>({ max: MAX_REFRESHES_IN_FLIGHT });
  /**
   * Hashes of container tokens Postgres knew. A lease's cached copy goes at every refresh (NOTIFY)
   * and after a minute, but the token stays good: its next pull reads Postgres without taking from
   * its address's budget for unknown tokens, which a neighbour behind the same address (a NAT, a
   * proxy, an IPv6 /64) could have spent. Bounded; the oldest are forgotten first.
   */
  const known = new Set<string>();
  const remember = (hash: string) => {
    known.delete(hash);
    known.add(hash);
    if (known.size > MAX_KNOWN_TOKENS) known.delete(known.values().next().value as string);
  };

  /** The response body (JSON text `{token, expires_at, username, generation}`), audited. */
  function answer(lease: CachedLease): string {
    events.add(lease);
    return lease.json;
  }

  /** Asks the workflow for a lease newer than `staleGeneration`; one request per dispatch at a time. */
  function refresh(entry: CachedDispatch, staleGeneration: number): Promise<void> {
    try {
      return refreshes.run(entry.dispatchId, () =>
        // Bounded: with the worker down a pull must fail (and the credential helper retry), not hang.
        deps.temporal.connection
          .withDeadline(Date.now() + REFRESH_DEADLINE_MS, () =>
            deps.temporal.workflow.getHandle(entry.workflowId).executeUpdate(refreshNowUpdate, { args: [{ staleGeneration }] }),
          )
          .then(() => undefined)
          .catch(async (err) => {
            // No run to ask: ended as it should have been (the reload then answers 410), or gone
            // without ending the dispatch (terminated by an operator): end it here, or pulls would
            // get 502 for as long as the container asks.
            if (err instanceof WorkflowNotFoundError) {
              await endIfWorkflowGone(deps, entry.dispatchId, entry.workflowId).catch(() => undefined);
              return;
            }
            if (err instanceof WorkflowUpdateFailedError) return; // ended: the reload says so
            throw new AppError(503, 'temporal_unavailable', 'could not reach the token workflow; try again', undefined, {
              'retry-after': '2',
            });
          }),
      );
    } catch (err) {
      if (!(err instanceof SingleFlightFullError)) throw err;
      return Promise.reject(new AppError(503, 'busy', 'too many refreshes in flight; try again', undefined, { 'retry-after': '2' }));
    }
  }

  /** The dispatch behind `hash` from memory or Postgres; unknown hashes count against their source address. */
  async function lookup(hash: string, source: string): Promise<{ entry: CachedDispatch; hit: boolean }> {
    const cached = cache.get(hash);
    if (cached) return { entry: cached, hit: true };
    // A known token that is over its own limit is refused before Postgres too.
    const tokenWait = limiter.wait(hash);
    if (tokenWait > 0) {
      metrics.pulls.inc({ result: 'rate_limited' });
      throw rateLimited(tokenWait, 'too many pulls for this container token');
    }
    const wasKnown = known.has(hash);
    const wait = wasKnown ? 0 : failures.take(source);
    if (wait > 0) {
      metrics.pulls.inc({ result: 'rate_limited' });
      throw rateLimited(wait, 'too many unknown container tokens from this address');
    }
    const entry = cache.isUnknown(hash) ? null : await cache.load(hash);
    if (!entry) {
      known.delete(hash);
      metrics.pulls.inc({ result: 'unauthorized' });
      throw unauthorized();
    }
    if (!wasKnown) failures.refund(source); // a known token is not a failed lookup
    remember(hash);
    return { entry, hit: false };
  }

  /**
   * The answer from memory when everything about it is settled there: a fresh cached lease of this
   * rig, no newer generation held by the caller, within the token's rate limit. Counted and audited
   * like any served pull. Undefined sends the pull down the full path, which says why (a refused
   * `take` takes nothing, so the full path's own refuses it the same way).
   */
  function fromMemory(hash: string, rigId: string, heldGeneration: number): string | undefined {
    const entry = cache.get(hash);
    const lease = entry?.lease;
    if (!entry || !lease || entry.rigId !== rigId || entry.ended || heldGeneration > lease.generation) return undefined;
    if (!isFresh(lease, marginMs, Date.now()) || limiter.take(hash) > 0) return undefined;
    metrics.servedPulls.hit += 1;
    return answer(lease);
  }

  return {
    /**
     * The pull's answer if it can be given from memory at once (see `fromMemory`), else undefined:
     * for the HTTP server's lane in front of the framework (api/routes/pull-lane.ts).
     */
    pullFromMemory(rigId: string, bearer: string, heldGeneration: number): string | undefined {
      return fromMemory(sha256Hex(bearer), rigId, heldGeneration);
    },

    /**
     * Serves POST /api/internal/rigs/:rig_id/git-token for the container presenting `bearer` from
     * `sourceIp`, which holds `heldGeneration` already (0: none or not said); returns the JSON body.
     * The answer's generation is never below `heldGeneration` when Postgres has that one.
     */
    async pull(rigId: string, bearer: string | undefined, sourceIp: string, heldGeneration = 0): Promise<string> {
      if (!bearer) throw unauthorized();
      const hash = sha256Hex(bearer);
      const hot = fromMemory(hash, rigId, heldGeneration);
      if (hot !== undefined) return hot;
      let { entry, hit } = await lookup(hash, sourceKey(sourceIp));
      const wait = limiter.take(hash);
      if (wait > 0) {
        metrics.pulls.inc({ result: 'rate_limited' });
        throw rateLimited(wait, 'too many pulls for this container token');
      }
      // The caller already holds a newer generation than this instance's copy: the write's NOTIFY
      // is still on its way (a push can reach the container first). Postgres has it; read it there.
      // Bounded by the rate limit above, so a made-up generation costs at most one read per pull.
      if (hit && heldGeneration > (entry.lease?.generation ?? 0)) {
        cache.invalidate(entry.dispatchId);
        const reloaded = await cache.load(hash);
        if (!reloaded) {
          metrics.pulls.inc({ result: 'unauthorized' });
          throw unauthorized();
        }
        entry = reloaded;
        hit = false;
      }
      // The hash was looked up, not compared: the rig id is not secret, a plain check will do.
      if (entry.rigId !== rigId) {
        metrics.pulls.inc({ result: 'forbidden' });
        throw new AppError(403, 'forbidden', 'this container token belongs to another rig');
      }
      if (entry.ended) {
        metrics.pulls.inc({ result: 'gone' });
        throw new AppError(410, 'dispatch_ended', 'the dispatch has ended; its tokens are revoked');
      }
      if (entry.lease && isFresh(entry.lease, marginMs, Date.now())) {
        metrics.servedPulls[hit ? 'hit' : 'miss'] += 1;
        return answer(entry.lease);
      }

      await refresh(entry, entry.lease?.generation ?? 0);
      cache.invalidate(entry.dispatchId);
      const after = await cache.load(hash);
      if (!after || after.ended) throw new AppError(410, 'dispatch_ended', 'the dispatch has ended; its tokens are revoked');
      if (after.lease && (after.lease.expiresAtMs === null || after.lease.expiresAtMs > Date.now())) {
        metrics.pulls.inc({ result: 'refreshed' });
        return answer(after.lease);
      }
      metrics.pulls.inc({ result: 'unavailable' });
      const d = await deps.db.agentDispatch.findUnique({
        where: { id: after.dispatchId },
        select: { lastErrorCode: true, lastErrorMessage: true },
      });
      if (d?.lastErrorCode) throw new AppError(502, d.lastErrorCode, d.lastErrorMessage ?? 'the provider failed');
      throw new AppError(503, 'token_unavailable', 'no token is available yet; try again shortly', undefined, { 'retry-after': '2' });
    },

    async close(): Promise<void> {
      await events.close();
    },
  };
}

export type PullService = ReturnType<typeof createPullService>;
