// One GitLab project access token per rig, shared by the rig's dispatches. Rotation kills the old
// token at once and every dispatch holds it, so exactly one process creates or rotates at a time
// (row lock, re-check after taking it, version guard) and saves the new token in the same
// transaction before anyone uses it; the caller then tells the rig's other dispatches. Where
// GitLab refuses project tokens, the answer is `account` with the reason (the grant stands in),
// asked again only every `retrySeconds` or at once after a reconnect. A token whose rig lets go
// of it (disconnect, reconnect elsewhere, deletion, idleness) waits as `revoking` until GitLab
// confirms the revocation or the token has surely expired (lib/project-token-sweeper.ts retries).
import { randomUUID } from 'node:crypto';
import type { Db } from './db';
import type { GitlabGrants } from './gitlab-grant';
import {
  claimIdle,
  detachStatements,
  lockRow,
  saveFallback,
  saveIssued,
  stillConnected,
  type IssuedSave,
  type TokenRow,
} from './project-token-rows';
import * as fns from './project-token-fns';
import { createRevoker } from './project-token-revoke';
import { ProjectTokenRefused, ProviderError, type GitlabClient, type RepoAccess } from './providers/types';
import type { SecretBox } from './secrets';
import { projectTokenContext } from './secret-contexts';

export interface ProjectTokenRig {
  rigId: string;
  rigName: string;
  integrationId: string;
  projectId: bigint;
  baseUrl: string;
  /** The rig's access: the token's scope follows it (`read_repository` or `write_repository`). */
  access: RepoAccess;
}

export type ProjectTokenAnswer = { scope: 'repository'; token: string; expiresAt: Date } | { scope: 'account'; reason: string };

export type ProjectTokenAction = 'created' | 'rotated' | 'recreated' | 'refused' | 'revoked';

export interface ProjectTokensDeps {
  db: Db;
  secrets: SecretBox;
  gitlab: Pick<
    GitlabClient,
    'listProjectAccessTokens' | 'createProjectAccessToken' | 'rotateProjectAccessToken' | 'revokeProjectAccessToken'
  >;
  grants: Pick<GitlabGrants, 'getValidAccessToken'>;
  /** A token is rotated at least this often (and always well before GitLab's date). */
  rotateSeconds: number;
  /** A refused rig asks GitLab again after this long. */
  retrySeconds: number;
  now?: () => number;
  /** Called once a rig's token changed (rotated, created, fell back, revoked): its dispatches, but the asking one, mint again. */
  onChanged?: (rigId: string, reason: string, askingDispatchId?: string) => Promise<unknown>;
  /** Counts what happened at GitLab, e.g. in metrics. */
  onAction?: (action: ProjectTokenAction) => void;
}

const RECONNECTED = 'the rig was reconnected while its token was being made (or its access changed): trying again';

/** A grant token this close to its expiry is refreshed first: it only has to last one GitLab call. */
const GRANT_MIN_SECONDS = 5;

type Locked = { answer: ProjectTokenAnswer; changed?: string } | { grantRejected: true } | { failed: unknown };

export function createProjectTokens(deps: ProjectTokensDeps) {
  const { db, secrets, gitlab } = deps;
  const now = deps.now ?? Date.now;

  // A row of another connection, or made for the other access (scope), is not the rig's token any more.
  const matches = (r: TokenRow, rig: ProjectTokenRig) =>
    r.integration_id === rig.integrationId && r.project_id === rig.projectId && r.access === rig.access;
  const usable = (r: TokenRow, minMs: number) =>
    r.status === 'active' && r.token_enc !== null && r.usable_until !== null && r.usable_until.getTime() - now() > minMs;
  const waiting = (r: TokenRow) => r.status === 'fallback' && !fns.retryDue(r.last_tried_at, now(), deps.retrySeconds);
  const held = (r: TokenRow): ProjectTokenAnswer => ({
    scope: 'repository',
    token: secrets.decrypt(r.token_enc as string, projectTokenContext(r.id)),
    expiresAt: r.usable_until as Date,
  });
  const account = (reason: string | null): ProjectTokenAnswer => ({
    scope: 'account',
    reason: reason ?? 'GitLab refused a project access token',
  });

  /** Under the rig's row lock: re-check, then rotate, create or record the refusal. */
  async function renewLocked(rig: ProjectTokenRig, minMs: number, grantToken: string, detached: string[]): Promise<Locked> {
    let issued: IssuedSave | undefined;
    const result = await db
      .$transaction(
        async (tx): Promise<Locked> => {
          // A long wait for the lock would eat the time the GitLab call needs; a retry finds the new token.
          await tx.$executeRaw`SET LOCAL lock_timeout = '5s'`;
          // The rig first (as its reconnect and deletion lock it): a mint that read the rig before a
          // reconnect (or a change of access) committed must not make a token for the project the rig
          // just left, or with the scope it just gave up.
          if (!(await stillConnected(tx, rig))) return { failed: new ProviderError('provider_unavailable', RECONNECTED) };
          let row = await lockRow(tx, rig, randomUUID());
          if (!matches(row, rig) || row.status === 'revoking') {
            // Left from an earlier connection or access of the rig, or being revoked: revoked apart from this rig.
            detached.push(...(await detachStatements(tx, rig.rigId)));
            row = await lockRow(tx, rig, randomUUID());
          }
          if (usable(row, minMs)) return { answer: held(row) };
          if (waiting(row)) return { answer: account(row.fallback_reason) };

          const call = { baseUrl: rig.baseUrl, accessToken: grantToken, projectId: Number(rig.projectId) };
          const heldBefore = row.status === 'active' && row.token_enc !== null;
          const expiresAt = fns.expiryDate(now());
          let action: ProjectTokenAction = 'created';
          try {
            let token;
            const rotatable = row.status === 'active' && row.gitlab_token_id !== null && fns.worstCaseEnd(row.expires_on!) > now();
            if (rotatable) {
              try {
                token = await gitlab.rotateProjectAccessToken({ ...call, tokenId: Number(row.gitlab_token_id), expiresAt });
                action = 'rotated';
              } catch (err) {
                if (!(err instanceof ProjectTokenRefused && err.reason === 'token_gone')) throw err;
                // Revoked at GitLab, or rotated by an attempt whose answer was lost (GitLab then
                // revoked the token we never saw too): a new one replaces it.
                action = 'recreated';
              }
            }
            if (!token) {
              // A create whose answer was lost left a token nobody holds: it carries the rig's marker.
              const strays = await gitlab.listProjectAccessTokens({ ...call, search: fns.rigMarker(rig.rigId) });
              for (const stray of strays) await gitlab.revokeProjectAccessToken({ ...call, tokenId: stray.id }).catch(() => undefined);
              token = await gitlab.createProjectAccessToken({
                ...call,
                name: fns.tokenName(rig.rigName, rig.rigId),
                scopes: fns.projectTokenScopes(rig.access),
                accessLevel: fns.PROJECT_TOKEN_ACCESS_LEVEL,
                expiresAt,
              });
            }
            issued = {
              rowId: row.id,
              fromVersion: row.version,
              token,
              rotated: action === 'rotated',
              usableUntil: usableFor(token.expiresAt),
            };
            if ((await saveIssued(tx, secrets, issued)) !== 1) throw new Error('project token changed under the row lock (version moved)');
            deps.onAction?.(action);
            return {
              answer: { scope: 'repository', token: token.token, expiresAt: issued.usableUntil },
              changed: `gitlab project token ${action}`,
            };
          } catch (err) {
            if (err instanceof ProviderError && err.code === 'invalid_credentials') return { grantRejected: true };
            if (err instanceof ProjectTokenRefused) {
              deps.onAction?.('refused');
              const reason = fns.fallbackReason(err.reason, err.message);
              // A token held until now stays alive at GitLab: it is revoked apart from the rig.
              if (row.token_enc !== null) {
                detached.push(...(await detachStatements(tx, rig.rigId)));
                row = await lockRow(tx, rig, randomUUID());
              }
              await saveFallback(tx, row.id, err.reason, reason);
              return { answer: account(reason), changed: heldBefore ? 'gitlab refused the project token: the grant stands in' : undefined };
            }
            // No answer: a rotation may have happened at GitLab and killed the token we hold, so
            // nobody is handed it any more; the next attempt rotates or, if it died, recreates.
            await tx.$executeRaw`UPDATE rig_project_tokens SET usable_until = LEAST(usable_until, now()), updated_at = now() WHERE id = ${row.id}::uuid`;
            return { failed: err };
          }
        },
        { maxWait: 30_000, timeout: 30_000 },
      )
      .catch(async (err): Promise<Locked> => {
        // GitLab answered but the transaction failed: save outside it, or the token would be lost
        // (after a rotation, with the old one dead).
        if (!issued) throw err;
        if ((await saveIssued(db, secrets, issued)) !== 1) {
          // The row moved on meanwhile (the rig was disconnected or went idle once the lock was
          // gone): nobody will hold this token, so it must not live out its days at GitLab.
          const call = { baseUrl: rig.baseUrl, accessToken: grantToken, projectId: Number(rig.projectId) };
          await gitlab.revokeProjectAccessToken({ ...call, tokenId: issued.token.id }).catch(() => undefined);
          throw err;
        }
        return {
          answer: { scope: 'repository', token: issued.token.token, expiresAt: issued.usableUntil },
          changed: 'gitlab project token saved',
        };
      });
    return result;
  }

  const usableFor = (expiresOn: string) => fns.usableUntil(expiresOn, now(), deps.rotateSeconds);

  /** Asks GitLab under the lock; a grant token GitLab rejects is swapped for a newer one once. */
  async function renew(rig: ProjectTokenRig, minMs: number, askingDispatchId?: string): Promise<ProjectTokenAnswer> {
    const detached: string[] = [];
    let grant = await deps.grants.getValidAccessToken(rig.integrationId, GRANT_MIN_SECONDS, askingDispatchId);
    let result = await renewLocked(rig, minMs, grant.accessToken, detached);
    if ('grantRejected' in result) {
      // Rejected before its expiry (revoked, or rotated elsewhere): ask for one newer than it.
      const remaining = Math.ceil((grant.expiresAt.getTime() - now()) / 1000);
      grant = await deps.grants.getValidAccessToken(rig.integrationId, Math.max(remaining, 0) + 1, askingDispatchId);
      result = await renewLocked(rig, minMs, grant.accessToken, detached);
    }
    for (const id of detached) await revokeRow(id).catch(() => undefined);
    if ('grantRejected' in result) {
      throw new ProviderError('reconnect_required', 'GitLab rejects even a freshly refreshed grant token: reconnect GitLab');
    }
    if ('failed' in result) throw result.failed;
    if (result.changed) await deps.onChanged?.(rig.rigId, result.changed, askingDispatchId).catch(() => undefined);
    return result.answer;
  }

  const revokeRow = createRevoker({ ...deps, now, grantMinSeconds: GRANT_MIN_SECONDS });

  return {
    /**
     * The rig's project access token with more than `minValiditySeconds` of use left (created or
     * rotated when needed), or `account` with the reason GitLab refused it. `askingDispatchId`, the
     * dispatch whose mint asks, is not told of a change it makes (it gets the answer).
     */
    async forRig(rig: ProjectTokenRig, minValiditySeconds: number, askingDispatchId?: string): Promise<ProjectTokenAnswer> {
      const minMs = minValiditySeconds * 1000;
      const [row] = await db.$queryRaw<TokenRow[]>`
        SELECT id, rig_id, integration_id, project_id, access::text AS access, gitlab_token_id, token_enc, expires_on, usable_until, version,
               status::text AS status, fallback_reason, last_tried_at
        FROM rig_project_tokens WHERE rig_id = ${rig.rigId}::uuid`;
      if (row && matches(row, rig) && usable(row, minMs)) return held(row);
      if (row && matches(row, rig) && waiting(row)) return account(row.fallback_reason);
      return renew(rig, minMs, askingDispatchId);
    },

    /**
     * Lets go of a rig's token (disconnect, reconnect elsewhere, deletion): detached within `sql`
     * (a transaction of the caller's, or the client), then revoked with `revoke`.
     */
    detach: (sql: Pick<Db, '$queryRaw' | '$executeRaw'>, rigId: string) => detachStatements(sql, rigId),

    /** Revokes detached tokens at GitLab; one that fails stays for the sweeper. Never throws. */
    async revoke(ids: string[]): Promise<void> {
      for (const id of ids) await revokeRow(id).catch(() => undefined);
    },

    /** A reconnect: refused rigs (of the rig, or of the integration) ask GitLab again at their next mint. */
    async retryNow(where: { rigId?: string; integrationId?: string }): Promise<void> {
      await db.$executeRaw`
        UPDATE rig_project_tokens SET last_tried_at = NULL, updated_at = now()
        WHERE status = 'fallback' AND (rig_id = ${where.rigId ?? null}::uuid OR integration_id = ${where.integrationId ?? null}::uuid)`;
    },

    /**
     * Revokes the tokens of rigs without a running dispatch for `idleSeconds`, and retries pending
     * revocations. Safe with several workers (SKIP LOCKED). Returns how many it revoked.
     */
    async sweep(idleSeconds: number, batch = 50): Promise<number> {
      const idle = await claimIdle(db, idleSeconds, batch);
      const pending = await db.$queryRaw<Array<{ id: string }>>`
        SELECT id FROM rig_project_tokens WHERE status = 'revoking' ORDER BY updated_at LIMIT ${batch}::int`;
      let revoked = 0;
      for (const { id } of pending) {
        const outcome = await revokeRow(id, true).catch(() => 'failed' as const);
        if (outcome === 'revoked') revoked++;
        // A row that failed (its grant dead, the account no longer Maintainer) goes to the back of
        // the queue: oldest first would pick the same stuck rows every round and never reach the rest.
        if (outcome === 'failed') {
          await db.$executeRaw`UPDATE rig_project_tokens SET updated_at = now() WHERE id = ${id}::uuid AND status = 'revoking'`.catch(
            () => undefined,
          );
        }
      }
      // A dispatch that started while its rig's token was being revoked mints again.
      for (const r of idle) await deps.onChanged?.(r.rig_id, 'idle gitlab project token revoked').catch(() => undefined);
      return revoked;
    },
  };
}

export type ProjectTokens = ReturnType<typeof createProjectTokens>;
