// The GitLab OAuth grant of an integration is shared by every dispatch on it, and GitLab rotates the
// refresh token on every use: two refreshes at once kill the grant (one wins, the other gets
// invalid_grant). So exactly one process refreshes at a time (row lock), re-checks after taking
// the lock, and saves the rotated pair in the same transaction before anyone uses it.
import type { Db } from './db';
import type { SecretBox } from './secrets';
import { gitlabTokenContext } from './secret-contexts';
import { ProviderError, type GitlabClient, type GitlabTokens } from './providers/types';

export interface ValidGitlabToken {
  accessToken: string;
  expiresAt: Date;
  /** True when this call performed the refresh (the caller tells the other dispatches). */
  refreshed: boolean;
  integrationId: string;
}

export class IntegrationUnavailableError extends Error {
  constructor(
    readonly code: 'reconnect_required' | 'installation_not_found',
    message: string,
  ) {
    super(message);
    this.name = 'IntegrationUnavailableError';
  }
}

interface GrantRow {
  id: string;
  status: string;
  gitlab_base_url: string | null;
  access_token_enc: string | null;
  refresh_token_enc: string | null;
  access_token_expires_at: Date | null;
  token_version: number;
}

export interface GitlabGrantsDeps {
  db: Db;
  secrets: SecretBox;
  gitlab: Pick<GitlabClient, 'refresh'>;
  now?: () => number;
  /** Called after a refresh is saved, e.g. to count it in metrics. */
  onRefresh?: (outcome: 'ok' | 'invalid_grant' | 'error') => void;
  /**
   * Called once a rotated pair is saved: GitLab killed the old access token, so every dispatch
   * holding it must be told, whoever caused the refresh (a dispatch, a pull, a repository list).
   */
  onRotated?: (integrationId: string, askingDispatchId?: string) => Promise<unknown>;
}

/** Waits between attempts to save a rotated pair while Postgres cannot take it (about 7.5 s in all). */
const SAVE_RETRY_MS = [500, 1000, 2000, 4000];

type Rotated = { tokens: GitlabTokens; fromVersion: number };

export function createGitlabGrants(deps: GitlabGrantsDeps) {
  const { db, secrets, gitlab } = deps;
  const now = deps.now ?? Date.now;
  /**
   * Pairs GitLab rotated that Postgres could not take: GitLab killed the old refresh token, so the
   * stored one is dead and this is the only copy of the grant. Saved first by the next call for the
   * integration (in this process); lost with the process, as an answer lost in flight would be.
   */
  const unsaved = new Map<string, Rotated>();

  const saveRotated = (client: Pick<Db, '$executeRaw'>, id: string, r: Rotated) => client.$executeRaw`
    UPDATE platform_integrations
    SET access_token_enc = ${secrets.encrypt(r.tokens.accessToken, gitlabTokenContext(id, 'access'))},
        refresh_token_enc = ${secrets.encrypt(r.tokens.refreshToken, gitlabTokenContext(id, 'refresh'))},
        access_token_expires_at = ${r.tokens.expiresAt},
        token_version = token_version + 1,
        updated_at = now()
    WHERE id = ${id}::uuid AND token_version = ${r.fromVersion}`;

  /**
   * Saves a pair held in memory, then forgets it (also when the row moved on: a newer pair was
   * saved). Once saved, the integration's dispatches are told, as after any rotation: the access
   * token they hold died when GitLab answered.
   */
  async function saveUnsaved(integrationId: string, askingDispatchId?: string): Promise<void> {
    const held = unsaved.get(integrationId);
    if (!held) return;
    const saved = await saveRotated(db, integrationId, held);
    unsaved.delete(integrationId);
    if (saved !== 1) return;
    deps.onRefresh?.('ok');
    await deps.onRotated?.(integrationId, askingDispatchId).catch(() => undefined);
  }

  /** Saves a rotated pair outside the failed transaction, retrying while Postgres is away; parks it if it stays away. */
  async function saveOutside(integrationId: string, r: Rotated): Promise<number> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await saveRotated(db, integrationId, r);
      } catch (err) {
        if (attempt >= SAVE_RETRY_MS.length) {
          unsaved.set(integrationId, r);
          throw err;
        }
        await new Promise((resolve) => setTimeout(resolve, SAVE_RETRY_MS[attempt]));
      }
    }
  }

  const usable = (row: GrantRow, minValidityMs: number) =>
    row.access_token_enc !== null && row.access_token_expires_at !== null && row.access_token_expires_at.getTime() - now() > minValidityMs;

  const check = (row: GrantRow | undefined): GrantRow => {
    if (!row) throw new IntegrationUnavailableError('installation_not_found', 'integration not found');
    if (row.status === 'reconnect_required') {
      throw new IntegrationUnavailableError('reconnect_required', 'GitLab grant was revoked or expired: reconnect the integration');
    }
    if (row.status === 'deleted') throw new IntegrationUnavailableError('installation_not_found', 'integration was deleted');
    if (!row.refresh_token_enc || !row.gitlab_base_url) {
      throw new IntegrationUnavailableError('reconnect_required', 'integration has no GitLab grant stored: reconnect it');
    }
    return row;
  };

  const answer = (row: GrantRow, refreshed: boolean): ValidGitlabToken => ({
    accessToken: secrets.decrypt(row.access_token_enc as string, gitlabTokenContext(row.id, 'access')),
    expiresAt: row.access_token_expires_at as Date,
    refreshed,
    integrationId: row.id,
  });

  return {
    /**
     * An access token with more than `minValiditySeconds` left: the stored one when it qualifies,
     * otherwise one refresh under the integration's row lock. A refresh tells the integration's
     * dispatches, except the one asking (`askingDispatchId`, whose mint gets the new token).
     */
    async getValidAccessToken(integrationId: string, minValiditySeconds: number, askingDispatchId?: string): Promise<ValidGitlabToken> {
      const minMs = minValiditySeconds * 1000;
      await saveUnsaved(integrationId, askingDispatchId);
      const [fast] = await db.$queryRaw<GrantRow[]>`
        SELECT id, status::text, gitlab_base_url, access_token_enc, refresh_token_enc, access_token_expires_at, token_version
        FROM platform_integrations WHERE id = ${integrationId}::uuid AND provider = 'gitlab'`;
      if (usable(check(fast), minMs)) return answer(fast, false);

      // Set when GitLab answered a refresh: if the transaction then fails (timeout, lost
      // connection), the rotated pair is saved outside it, or the grant would be dead.
      let rotated: Rotated | undefined;

      const result = await db
        .$transaction(
          async (tx) => {
            // Waiting long for the lock would eat the time the refresh needs inside this
            // transaction; give up early instead (a retry finds the token refreshed).
            await tx.$executeRaw`SET LOCAL lock_timeout = '5s'`;
            const [row] = await tx.$queryRaw<GrantRow[]>`
              SELECT id, status::text, gitlab_base_url, access_token_enc, refresh_token_enc, access_token_expires_at, token_version
              FROM platform_integrations WHERE id = ${integrationId}::uuid FOR UPDATE`;
            // Someone else may have refreshed while we waited for the lock.
            if (usable(check(row), minMs)) return answer(row, false);

            try {
              const tokens = await gitlab.refresh({
                baseUrl: row.gitlab_base_url as string,
                refreshToken: secrets.decrypt(row.refresh_token_enc as string, gitlabTokenContext(row.id, 'refresh')),
              });
              rotated = { tokens, fromVersion: row.token_version };
            } catch (err) {
              if (err instanceof ProviderError && err.code === 'reconnect_required') {
                deps.onRefresh?.('invalid_grant');
                await tx.$executeRaw`
                  UPDATE platform_integrations
                  SET status = 'reconnect_required', status_reason = ${err.message}, status_changed_at = now(), updated_at = now()
                  WHERE id = ${row.id}::uuid`;
                return { reconnect: err } as const;
              }
              deps.onRefresh?.('error');
              throw err;
            }
            if ((await saveRotated(tx, row.id, rotated)) !== 1)
              throw new Error('GitLab grant changed under the row lock (token_version moved)');
            return { accessToken: rotated.tokens.accessToken, expiresAt: rotated.tokens.expiresAt, refreshed: true, integrationId: row.id };
          },
          { maxWait: 30_000, timeout: 30_000 },
        )
        .catch(async (err) => {
          if (!rotated) throw err;
          const saved = await saveOutside(integrationId, rotated);
          if (saved !== 1) throw err;
          return { accessToken: rotated.tokens.accessToken, expiresAt: rotated.tokens.expiresAt, refreshed: true, integrationId };
        });
      // The status change above must commit, so the failure is raised after the transaction.
      if ('reconnect' in result) throw new IntegrationUnavailableError('reconnect_required', result.reconnect.message);
      if (result.refreshed) {
        deps.onRefresh?.('ok');
        await deps.onRotated?.(integrationId, askingDispatchId).catch(() => undefined);
      }
      return result;
    },
  };
}

export type GitlabGrants = ReturnType<typeof createGitlabGrants>;
