// Revokes a detached or idle project token at GitLab, one process at a time, and records it; a
// token that has surely expired needs no call. Used by the store (requests, mints) and its sweep.
import type { Db } from './db';
import type { GitlabGrants } from './gitlab-grant';
import { latestEnd } from './project-token-fns';
import type { TokenRow } from './project-token-rows';
import type { GitlabClient } from './providers/types';

export type RevokeOutcome = 'revoked' | 'expired' | 'busy' | 'none';

/** `revokeRow(id, sweeping)`: a request waits for the row's lock, a sweep skips a row another holds. */
export function createRevoker(deps: {
  db: Db;
  gitlab: Pick<GitlabClient, 'revokeProjectAccessToken'>;
  grants: Pick<GitlabGrants, 'getValidAccessToken'>;
  now: () => number;
  grantMinSeconds: number;
  onAction?: (action: 'revoked') => void;
}) {
  const { db, gitlab, now } = deps;
  return async function revokeRow(id: string, sweeping = false): Promise<RevokeOutcome> {
    const [peek] = await db.$queryRaw<Array<TokenRow & { base_url: string | null }>>`
      SELECT t.id, t.rig_id, t.integration_id, t.project_id, t.gitlab_token_id, t.expires_on, t.status::text AS status, i.gitlab_base_url AS base_url
      FROM rig_project_tokens t JOIN platform_integrations i ON i.id = t.integration_id WHERE t.id = ${id}::uuid`;
    if (!peek || peek.status !== 'revoking') return 'none';
    const gone = peek.gitlab_token_id === null || !peek.expires_on || latestEnd(peek.expires_on) <= now();
    const grant = gone ? undefined : await deps.grants.getValidAccessToken(peek.integration_id, deps.grantMinSeconds);
    const outcome = await db.$transaction(
      async (tx) => {
        // Several workers sweep at once: whoever holds the row revokes it, the others move on. A
        // request (disconnect, delete) waits instead, so it answers after the revocation.
        const [mine] = sweeping
          ? await tx.$queryRaw<TokenRow[]>`
              SELECT id FROM rig_project_tokens WHERE id = ${id}::uuid AND status = 'revoking' FOR UPDATE SKIP LOCKED`
          : await tx.$queryRaw<TokenRow[]>`SELECT id FROM rig_project_tokens WHERE id = ${id}::uuid AND status = 'revoking' FOR UPDATE`;
        if (!mine) return 'busy' as const;
        if (grant) {
          const call = { baseUrl: peek.base_url as string, accessToken: grant.accessToken, projectId: Number(peek.project_id) };
          await gitlab.revokeProjectAccessToken({ ...call, tokenId: Number(peek.gitlab_token_id) });
          deps.onAction?.('revoked');
        }
        await tx.$executeRaw`
          UPDATE rig_project_tokens SET status = 'revoked', token_enc = NULL, gitlab_token_id = NULL, usable_until = NULL,
            revoked_at = now(), version = version + 1, updated_at = now()
          WHERE id = ${id}::uuid AND rig_id IS NOT NULL`;
        await tx.$executeRaw`DELETE FROM rig_project_tokens WHERE id = ${id}::uuid AND rig_id IS NULL`;
        return grant ? ('revoked' as const) : ('expired' as const);
      },
      { maxWait: 30_000, timeout: 30_000 },
    );
    return outcome;
  };
}
