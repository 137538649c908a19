// GitHub installation tokens whose revocation GitHub failed outside a stop: a token withdrawn after a
// permanent mint failure, a surplus or unsettled mint, a new token that failed its check call, a
// dispatch the API ended because its workflow was gone. Each lives up to an hour; instead of leaving it to expire, it is kept (encrypted, one row
// per token) and the workers' sweeper tries again, with backoff, until GitHub confirms the revocation
// (or says the token, or its installation, is gone), or the token has expired. Several
// workers sweep at once: a round claims its rows (SKIP LOCKED) by moving their next attempt past the
// round, so each row is tried by one of them, and a worker that dies mid-round leaves its rows to
// the next round after that. A worker claims only rows sealed under a key it has: during a key
// rotation, a worker of the old deploy leaves the new key's rows to the workers that can open them
// (a row whose token has expired is any worker's to delete).
import { randomUUID } from 'node:crypto';
import type { Db } from './db';
import { REVOKE_AFTER_EXPIRY_MS } from './lease-store';
import type { Logger } from './logger';
import type { Metrics } from './metrics';
import { ProviderError, type GithubClient } from './providers/types';
import { pendingRevocationContext } from './secret-contexts';
import { sha256Hex, type SecretBox } from './secrets';
import { startSweeper, type Sweeper } from './sweeper';

/** GitHub's installation tokens live an hour: a token whose expiry is not known is kept that long. */
const DEFAULT_LIFETIME_MS = 3600_000;
/** Waits before the 1st, 2nd, … retry: the first after the failure that queued the token (the last repeats). */
export const RETRY_DELAYS_MS = [5_000, 10_000, 20_000, 40_000, 80_000, 160_000, 300_000];
/** How long a claimed row is left alone: longer than a round's calls to GitHub can take. */
const CLAIM_MS = 120_000;
/** How often each worker looks for due rows (an indexed read of a table that is nearly always empty). */
export const SWEEP_EVERY_MS = 5_000;

export interface UnrevokedToken {
  token: string;
  /** When the token stops working; null when not known (then an hour from now). */
  expiresAt: Date | null;
  dispatchId?: string | null;
  /** Why it was being revoked (kept for the logs). */
  reason: string;
  /** What the failed attempt ended with (a provider error code). */
  error: string;
}

export interface SweepCounts {
  revoked: number;
  alreadyInvalid: number;
  expired: number;
  /** Failed again; tried later. */
  retrying: number;
  /** The installation is gone, or the row fails to decrypt (tampered): given up. */
  dropped: number;
}

interface ClaimedRow {
  id: string;
  token_enc: string;
  expires_at: Date;
  dispatch_id: string | null;
  attempts: number;
}

export function createRevocationQueue(deps: {
  db: Db;
  secrets: SecretBox;
  github: Pick<GithubClient, 'revokeInstallationToken'>;
  metrics?: Pick<Metrics, 'revocations'>;
  logger?: Pick<Logger, 'info' | 'warn'>;
}) {
  const { db, secrets } = deps;

  /** Revokes one claimed row's token, or gives it up; returns what became of it. */
  async function settle(row: ClaimedRow): Promise<keyof SweepCounts> {
    if (row.expires_at.getTime() + REVOKE_AFTER_EXPIRY_MS <= Date.now()) return 'expired';
    let token: string;
    try {
      token = secrets.decrypt(row.token_enc, pendingRevocationContext(row.id));
    } catch {
      return 'dropped';
    }
    try {
      return (await deps.github.revokeInstallationToken(token)) === 'revoked' ? 'revoked' : 'alreadyInvalid';
    } catch (err) {
      const code = err instanceof ProviderError ? err.code : 'error';
      // The installation is gone, and its tokens with it. Any other failure (GitHub away, a
      // suspension that may be lifted before the token expires) is tried again while it works.
      if (code === 'installation_not_found') {
        deps.logger?.warn({ dispatchId: row.dispatch_id, code }, 'pending revocation: GitHub no longer knows the installation; given up');
        return 'dropped';
      }
      // The enqueue waited RETRY_DELAYS_MS[0]; the n-th failed retry waits the next one.
      const delay = RETRY_DELAYS_MS[Math.min(row.attempts, RETRY_DELAYS_MS.length - 1)];
      await db.$executeRaw`
        UPDATE pending_revocations SET next_attempt_at = now() + make_interval(secs => ${delay / 1000}::float8), last_error = ${code}
        WHERE id = ${row.id}::uuid`;
      return 'retrying';
    }
  }

  return {
    /**
     * Keeps tokens GitHub failed to revoke for the sweeper; tokens already expired are not kept. A
     * token already waiting stays as it is. Never throws (Postgres away: logged, the token expires).
     */
    async enqueue(tokens: UnrevokedToken[]): Promise<void> {
      for (const t of tokens) {
        const expiresAt = t.expiresAt ?? new Date(Date.now() + DEFAULT_LIFETIME_MS);
        if (expiresAt.getTime() + REVOKE_AFTER_EXPIRY_MS <= Date.now()) continue;
        const id = randomUUID();
        try {
          const inserted = await db.$executeRaw`
            INSERT INTO pending_revocations (id, token_sha256, token_enc, expires_at, dispatch_id, reason, last_error, next_attempt_at)
            VALUES (${id}::uuid, ${sha256Hex(t.token)}, ${secrets.encrypt(t.token, pendingRevocationContext(id))}, ${expiresAt},
                    ${t.dispatchId ?? null}::uuid, ${t.reason.slice(0, 200)}, ${t.error.slice(0, 80)},
                    now() + make_interval(secs => ${RETRY_DELAYS_MS[0] / 1000}::float8))
            ON CONFLICT (token_sha256) DO NOTHING`;
          if (inserted === 0) continue; // already waiting
          deps.metrics?.revocations.inc({ outcome: 'queued' });
          deps.logger?.info({ dispatchId: t.dispatchId ?? null, error: t.error }, 'revocation failed; queued for retry');
        } catch (err) {
          deps.logger?.warn(
            { dispatchId: t.dispatchId ?? null, err: { name: (err as Error)?.name, message: (err as Error)?.message } },
            'could not queue a failed revocation; the token expires on its own',
          );
        }
      }
    },

    /** One round: tries every due row (up to `batch`); what became of them. */
    async sweep(batch = 50): Promise<SweepCounts> {
      const counts: SweepCounts = { revoked: 0, alreadyInvalid: 0, expired: 0, retrying: 0, dropped: 0 };
      const started = Date.now();
      const rows = await db.$queryRaw<ClaimedRow[]>`
        UPDATE pending_revocations p SET next_attempt_at = now() + make_interval(secs => ${CLAIM_MS / 1000}::float8), attempts = p.attempts + 1
        FROM (
          SELECT id FROM pending_revocations
          WHERE next_attempt_at <= now()
            AND (split_part(token_enc, ':', 2) = ANY(${secrets.keyIds as string[]}::text[])
                 OR expires_at < now() - make_interval(secs => ${REVOKE_AFTER_EXPIRY_MS / 1000}::float8))
          ORDER BY next_attempt_at LIMIT ${batch}::int FOR UPDATE SKIP LOCKED
        ) due
        WHERE p.id = due.id
        RETURNING p.id::text AS id, p.token_enc, p.expires_at, p.dispatch_id::text AS dispatch_id, p.attempts`;
      for (const [i, row] of rows.entries()) {
        // GitHub answering slowly: hand back what is left well before the claim runs out, so no other
        // worker takes a row this one is still trying.
        if (Date.now() - started > CLAIM_MS / 2) {
          const rest = rows.slice(i).map((r) => r.id);
          await db.$executeRaw`
            UPDATE pending_revocations SET next_attempt_at = now(), attempts = attempts - 1 WHERE id = ANY(${rest}::uuid[])`;
          break;
        }
        const outcome = await settle(row).catch(() => 'retrying' as const);
        counts[outcome]++;
        if (outcome === 'retrying') continue;
        await db.$executeRaw`DELETE FROM pending_revocations WHERE id = ${row.id}::uuid`;
        const label = outcome === 'alreadyInvalid' ? 'already_invalid' : outcome === 'dropped' ? 'failed' : outcome;
        deps.metrics?.revocations.inc({ outcome: label });
        if (outcome === 'revoked' || outcome === 'alreadyInvalid') {
          deps.logger?.info({ dispatchId: row.dispatch_id, attempts: row.attempts + 1, outcome: label }, 'pending revocation settled');
        }
      }
      return counts;
    },

    /** How many tokens wait. */
    async pending(): Promise<number> {
      const [{ n }] = await db.$queryRaw<Array<{ n: number }>>`SELECT count(*)::int AS n FROM pending_revocations`;
      return n;
    },
  };
}

export type RevocationQueue = ReturnType<typeof createRevocationQueue>;

/** Runs the queue's rounds in a worker process (bin/repo-connect.ts). */
export function startRevocationSweeper(deps: {
  queue: Pick<RevocationQueue, 'sweep'>;
  logger: Pick<Logger, 'info' | 'warn'>;
  everyMs?: number;
}): Sweeper {
  return startSweeper({
    everyMs: deps.everyMs ?? SWEEP_EVERY_MS,
    logger: deps.logger,
    what: 'pending revocation sweep',
    sweep: async () => {
      const c = await deps.queue.sweep();
      if (c.revoked + c.alreadyInvalid + c.expired + c.dropped + c.retrying > 0) deps.logger.info({ ...c }, 'pending revocations swept');
    },
  });
}
