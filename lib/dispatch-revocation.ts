// Revoking the GitHub tokens a dispatch holds when it ends. One place for both ways a dispatch ends:
// the workflow's finishDispatch activity, and the API when the workflow no longer exists.
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { LeaseStore } from './lease-store';
import type { Metrics } from './metrics';
import { ProviderError, type GithubClient } from './providers/types';

export interface RevocationDeps {
  github: Pick<GithubClient, 'revokeInstallationToken'>;
  leases: LeaseStore;
  metrics?: Metrics;
}

/** Revokes a GitHub token, trying a few times; never throws (returns the outcome). */
export async function revokeBestEffort(github: RevocationDeps['github'], token: string): Promise<string> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await github.revokeInstallationToken(token);
    } catch (err) {
      if (attempt >= 3) return `failed (${err instanceof ProviderError ? err.code : 'error'})`;
      await new Promise((r) => setTimeout(r, 500 * attempt));
    }
  }
}

/**
 * What `leases.close` runs between marking the dispatch ended and forgetting its tokens: revokes
 * every token it holds that still works and records one `revoked` event with the outcomes.
 */
export function revokeHeldTokens(deps: RevocationDeps, dispatchId: string, reason: string): () => Promise<void> {
  return async () => {
    const lease = await deps.leases.read(dispatchId);
    const revocable = await deps.leases.revocableTokens(dispatchId);
    if (lease && revocable.length > 0) {
      const outcomes: string[] = [];
      for (const t of revocable) {
        const outcome = await revokeBestEffort(deps.github, t.token);
        deps.metrics?.revocations.inc({ outcome: outcome.startsWith('failed') ? 'failed' : outcome });
        outcomes.push(t.which === 'current' ? outcome : `replaced token ${outcome}`);
      }
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
