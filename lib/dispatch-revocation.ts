// Revoking the GitHub tokens a dispatch holds when it ends. One place for both ways a dispatch ends:
// the workflow's finishDispatch activity, and the API when the workflow no longer exists.
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { LeaseStore } from './lease-store';
import type { Metrics } from './metrics';
import { ProviderError, type GithubClient } from './providers/types';
import type { RevocationQueue, UnrevokedToken } from './revocation-queue';

export interface RevocationDeps {
  github: Pick<GithubClient, 'revokeInstallationToken'>;
  leases: LeaseStore;
  /** Where a token GitHub failed to revoke waits for the worker's retries. */
  revocations: Pick<RevocationQueue, 'enqueue'>;
  metrics?: Pick<Metrics, 'revocations'>;
}

/**
 * Revokes a GitHub token, trying a few times, and counts the outcome; never throws. `passing`: the
 * last failure was GitHub unavailable.
 */
async function revokeTrying(
  deps: Pick<RevocationDeps, 'github' | 'metrics'>,
  token: string,
  attempts = 3,
): Promise<{ outcome: string; passing: boolean; code?: string }> {
  for (let attempt = 1; ; attempt++) {
    try {
      const outcome = await deps.github.revokeInstallationToken(token);
      deps.metrics?.revocations.inc({ outcome });
      return { outcome, passing: false };
    } catch (err) {
      if (attempt >= attempts) {
        const known = err instanceof ProviderError;
        const code = known ? err.code : 'error';
        deps.metrics?.revocations.inc({ outcome: 'failed' });
        return { outcome: `failed (${code})`, passing: !known || err.retryable, code };
      }
      await new Promise((r) => setTimeout(r, 500 * attempt));
    }
  }
}

/**
 * Whether a failed revocation (its error code) is kept for the worker's retries: any failure but
 * GitHub no longer knowing the installation, whose tokens died with it. A suspended installation's
 * token works again if the suspension is lifted within its hour.
 */
function worthRetrying(code: string | undefined): code is string {
  return code !== undefined && code !== 'installation_not_found';
}

/** A GitHub token to revoke outside a stop, with what the retries need if GitHub fails. */
export interface TokenToRevoke {
  token: string;
  expiresAt: Date | null;
  dispatchId: string;
  reason: string;
}

/**
 * Revokes a GitHub token, trying `attempts` times (3 by default; fewer where the caller has a time
 * limit of its own); never throws (returns the outcome). A token GitHub failed to revoke is queued
 * for the worker's retries.
 */
export async function revokeBestEffort(
  deps: Pick<RevocationDeps, 'github' | 'revocations' | 'metrics'>,
  t: TokenToRevoke,
  attempts?: number,
): Promise<string> {
  const { outcome, code } = await revokeTrying(deps, t.token, attempts);
  if (worthRetrying(code)) await deps.revocations.enqueue([{ ...t, error: code }]);
  return outcome;
}

/**
 * What `leases.close` runs between marking the dispatch ended and forgetting its tokens: revokes
 * every token it holds that still works and records one `revoked` event with the outcomes.
 * `untilRevoked` (a workflow's stop, whose activity retries until the held token has expired):
 * while GitHub is unavailable and a token it could not revoke still works, it throws instead, so
 * nothing is forgotten and the next attempt revokes again. Without it (the API ending a dispatch
 * whose workflow is gone, a withdrawal) a failure is recorded and the token is queued for the
 * worker's retries (lib/revocation-queue.ts).
 * `attempts` per token (3 by default): fewer where a caller has a time limit of its own.
 */
export function revokeHeldTokens(
  deps: RevocationDeps,
  dispatchId: string,
  reason: string,
  opts: { untilRevoked?: boolean; attempts?: number } = {},
): () => Promise<void> {
  return async () => {
    const lease = await deps.leases.read(dispatchId);
    const revocable = await deps.leases.revocableTokens(dispatchId);
    if (lease && revocable.length > 0) {
      const outcomes: string[] = [];
      const unrevoked: UnrevokedToken[] = [];
      let passingFailures = 0;
      for (const t of revocable) {
        const { outcome, passing, code } = await revokeTrying(deps, t.token, opts.attempts);
        outcomes.push(t.which === 'current' ? outcome : `replaced token ${outcome}`);
        const working = t.expiresAt === null || t.expiresAt.getTime() > Date.now();
        if (passing && working) passingFailures++;
        if (worthRetrying(code) && working) unrevoked.push({ token: t.token, expiresAt: t.expiresAt, dispatchId, reason, error: code });
      }
      if (opts.untilRevoked && passingFailures > 0) {
        throw new ProviderError(
          'provider_unavailable',
          `GitHub could not revoke ${passingFailures} token(s) the dispatch holds (${outcomes.join('; ')}); trying again while they work`,
        );
      }
      await deps.revocations.enqueue(unrevoked);
      await deps.leases.recordEvent(dispatchId, 'revoked', {
        source: lease.source,
        generation: lease.generation,
        fingerprint: lease.fingerprint,
        expiresAt: lease.expiresAt,
        detail: `${outcomes.join('; ')} (${reason})`,
      });
    } else if (lease?.token) {
      deps.metrics?.revocations.inc({ outcome: 'not_revocable' });
    }
  };
}

/** The reason a dispatch ended by the API (not its workflow) gives. */
const WORKFLOW_GONE = 'token workflow no longer exists';

/** Ends a dispatch whose workflow is gone as the workflow would have: ended, its GitHub tokens revoked, `stopped`. */
export function endAsGone(deps: RevocationDeps, dispatchId: string): Promise<void> {
  return deps.leases.close(dispatchId, { status: 'stopped', reason: WORKFLOW_GONE }, revokeHeldTokens(deps, dispatchId, WORKFLOW_GONE));
}

/**
 * Ends the dispatch if its token workflow has no open run (an operator terminated it, or its stop
 * gave up on Postgres); returns whether it did. Temporal's "not found" alone is not believed: a
 * continue-as-new can answer it while the next run is already open, which `describe` shows.
 */
export async function endIfWorkflowGone(
  deps: RevocationDeps & { temporal: Pick<Client, 'workflow'> },
  dispatchId: string,
  workflowId: string,
): Promise<boolean> {
  const open = await deps.temporal.workflow
    .getHandle(workflowId)
    .describe()
    .then(
      (d) => d.status.name === 'RUNNING',
      (err: unknown) => (err instanceof WorkflowNotFoundError ? false : Promise.reject(err)),
    );
  if (open) return false;
  await endAsGone(deps, dispatchId);
  return true;
}
