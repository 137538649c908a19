// A GitHub token minted by an attempt that then failed is revoked unless the dispatch holds it (its
// store committed and only the answer was lost: a retry hands that lease out). When Postgres cannot
// say, because it is down, neither guess is safe: revoking kills a token the container is about to
// be given, and keeping it leaves a token nobody holds alive for its hour. Such a mint is asked about
// again, with backoff, until Postgres answers, and revoked only if the dispatch does not hold it.
// The pending checks live in this worker's memory: a worker that dies with one pending leaves that
// token to expire, as a worker that dies between a mint and its store does.
import type { Logger } from '../lib/logger';

export interface MintSettlerDeps {
  /** Whether the dispatch holds the token (current lease or the one it replaced); throws when Postgres cannot say. */
  holds(dispatchId: string, token: string): Promise<boolean>;
  revoke(dispatchId: string, token: string, expiresAt: Date | null): Promise<unknown>;
  logger?: Pick<Logger, 'warn' | 'info'>;
  /** Waits between checks while Postgres cannot answer (the last one repeats). */
  delaysMs?: number[];
}

const DEFAULT_DELAYS_MS = [1000, 2000, 4000, 8000, 15_000, 30_000];

export function createMintSettler(deps: MintSettlerDeps) {
  const delays = deps.delaysMs ?? DEFAULT_DELAYS_MS;
  const pending = new Set<NodeJS.Timeout>();

  /** Revokes `token` now if the dispatch does not hold it; true when the answer is known. */
  async function check(dispatchId: string, token: string, expiresAt: Date | null): Promise<boolean> {
    let held: boolean;
    try {
      held = await deps.holds(dispatchId, token);
    } catch {
      return false;
    }
    if (!held) await deps.revoke(dispatchId, token, expiresAt);
    return true;
  }

  function later(dispatchId: string, token: string, expiresAt: Date | null, attempt: number) {
    const timer = setTimeout(
      () => {
        pending.delete(timer);
        if (expiresAt !== null && expiresAt.getTime() <= Date.now()) {
          deps.logger?.info({ dispatchId }, 'unsettled mint: the token expired before Postgres answered');
          return;
        }
        void check(dispatchId, token, expiresAt).then((known) => {
          if (known) deps.logger?.info({ dispatchId, attempts: attempt + 2 }, 'unsettled mint settled');
          else later(dispatchId, token, expiresAt, attempt + 1);
        });
      },
      delays[Math.min(attempt, delays.length - 1)],
    );
    timer.unref();
    pending.add(timer);
  }

  return {
    /**
     * Settles a token minted by an attempt that failed after the mint: revoked at once if the
     * dispatch does not hold it, kept if it does, and asked about again later if Postgres cannot say.
     */
    async settle(dispatchId: string, token: string, expiresAt: Date | null): Promise<void> {
      if (await check(dispatchId, token, expiresAt)) return;
      deps.logger?.warn({ dispatchId }, 'unsettled mint: Postgres cannot say whether the lease was stored; asking again');
      later(dispatchId, token, expiresAt, 0);
    },
    /** How many tokens wait for an answer. */
    pending: () => pending.size,
  };
}
