// The current token of each dispatch, encrypted at rest. The dispatch's workflow (through its
// activities) is the only writer; the pull route reads. Every write NOTIFYs `repo_connect_leases`
// in the same transaction, so API instances drop cached copies the moment a lease changes.
//
// This is the refresh loop's hot path, so it speaks SQL through Prisma's raw queries, which cost a
// fraction of a model query's CPU in Prisma's query interpreter (README, "Performance"), and a
// refresh cycle makes four: the lease read (here), the rig's credential source
// (activities/credential-resolver.ts), the write (lib/lease-statements.ts) and the push's ledger row.
import type { Db } from './db';
import { LEASE_CHANNEL, storeNext, touch } from './lease-statements';
import type { Credential, CurrentLease, EventKind, LeaseRow, RevocableToken, WriteResult } from './lease-types';
import { fingerprint, safeEqual, type SecretBox } from './secrets';
import { leaseTokenContext } from './secret-contexts';
import {
  ENDED_STATUSES,
  type CredentialSource,
  type DispatchStatus,
  type FinishDispatchInput,
  type LeaseMeta,
} from '../workflows/git-token-types';

export { DISPATCH_CREATED_CHANNEL, LEASE_CHANNEL } from './lease-statements';
export type { Credential, CurrentLease, EventKind, LeaseRow, RevocableToken, WriteResult } from './lease-types';

/**
 * Waiting for a pooled connection is normal when hundreds of refreshes land together; failing
 * after Prisma's default 2 s would make Temporal retry the activity and mint a token again.
 */
const TX_OPTIONS = { maxWait: 20_000, timeout: 20_000 };

export class DispatchEndedError extends Error {
  constructor(readonly dispatchId: string) {
    super(`dispatch ${dispatchId} has ended`);
    this.name = 'DispatchEndedError';
  }
}

const previousContext = (dispatchId: string) => `${leaseTokenContext(dispatchId)}:previous`;

/**
 * A token whose stated expiry passed less than this long ago is still revoked at a stop: providers
 * round `expires_at` down to the second and their clocks are not ours, so it may still work there.
 * A revoke of a token that did expire costs one call the provider answers 401 (already invalid).
 */
export const REVOKE_AFTER_EXPIRY_MS = 60_000;

/** What the workflow may know of a lease row. */
export const metaOf = (
  r: Pick<LeaseRow, 'generation' | 'expires_at' | 'credential_source' | 'fingerprint'>,
  reused: boolean,
): LeaseMeta => ({
  generation: r.generation ?? 0,
  expiresAt: iso(r.expires_at),
  source: r.credential_source ?? 'none',
  fingerprint: r.fingerprint ?? '',
  reused,
});

const isEnded = (r: Pick<LeaseRow, 'ended_at' | 'status'>) => r.ended_at !== null || ENDED_STATUSES.includes(r.status);

export function createLeaseStore(deps: { db: Db; secrets: SecretBox }) {
  const { db, secrets } = deps;

  async function row(dispatchId: string): Promise<LeaseRow | undefined> {
    const [r] = await db.$queryRaw<LeaseRow[]>`
      SELECT d.id, d.rig_id, d.status::text AS status, d.ended_at, d.container_url, d.container_token_enc,
             l.generation, l.credential_source::text AS credential_source, l.token_enc, l.previous_token_enc,
             l.previous_expires_at, l.revocable, l.username, l.fingerprint, l.expires_at, l.integration_id,
             l.access::text AS access, l.mint_key
      FROM agent_dispatches d LEFT JOIN token_leases l ON l.dispatch_id = d.id
      WHERE d.id = ${dispatchId}::uuid`;
    return r;
  }

  type Step =
    | { kind: 'duplicate'; result: WriteResult }
    | { kind: 'reused'; result: WriteResult }
    | {
        kind: 'next';
        result: WriteResult;
        generation: number;
        tokenEnc: string;
        previousEnc: string | null;
        previousExpiresAt: Date | null;
      };

  /** What storing `credential` over `current` means: nothing (another attempt's), a touch, or a new generation. */
  function plan(current: LeaseRow, credential: Credential, mintKey: string, fp: string): Step {
    const held = current.token_enc !== null;
    if (held && current.mint_key === mintKey && current.fingerprint !== fp) {
      return { kind: 'duplicate', result: { meta: metaOf(current, false), duplicate: true, revokeNow: [] } };
    }
    if (held && current.fingerprint === fp)
      return { kind: 'reused', result: { meta: metaOf(current, true), duplicate: false, revokeNow: [] } };
    const now = new Date();
    const generation = (current.generation ?? 0) + 1;
    // Replaced GitHub tokens stay valid for up to the margin. Within one integration the last
    // one is kept (encrypted) for the stop to revoke; older ones, or any after a switch of
    // source, are revoked by the caller now, and so is one that could write when the rig now only
    // reads (kept, it would go on pushing). Town and GitLab tokens are never kept or revoked.
    const valid = (enc: string | null, exp: Date | null) => enc !== null && exp !== null && exp > now;
    const revokeNow: string[] = [];
    if (current.previous_token_enc && valid(current.previous_token_enc, current.previous_expires_at)) {
      revokeNow.push(secrets.decrypt(current.previous_token_enc, previousContext(current.id)));
    }
    const replaced =
      current.revocable && valid(current.token_enc, current.expires_at)
        ? secrets.decrypt(current.token_enc!, leaseTokenContext(current.id))
        : null;
    const narrowed = current.access === 'write' && credential.access === 'read';
    const keepPrevious = replaced !== null && credential.revocable && current.integration_id === credential.integrationId && !narrowed;
    if (replaced !== null && !keepPrevious) revokeNow.push(replaced);
    return {
      kind: 'next',
      generation,
      tokenEnc: secrets.encrypt(credential.token, leaseTokenContext(current.id)),
      previousEnc: keepPrevious ? secrets.encrypt(replaced!, previousContext(current.id)) : null,
      previousExpiresAt: keepPrevious ? current.expires_at : null,
      result: {
        meta: { generation, expiresAt: iso(credential.expiresAt), source: credential.source, fingerprint: fp, reused: false },
        duplicate: false,
        revokeNow,
      },
    };
  }

  /**
   * First step of ending: stamps ended_at and tells every cache, so pulls answer 410 and no
   * mint or push happens from now on. The status stays until `finalize` (after revocation),
   * so `stopped` means the tokens were revoked where the provider allows.
   */
  async function end(dispatchId: string): Promise<void> {
    await db.$executeRaw`
      WITH ended AS (
        UPDATE agent_dispatches SET ended_at = COALESCE(ended_at, now()), updated_at = now() WHERE id = ${dispatchId}::uuid RETURNING 1
      )
      SELECT pg_notify(${LEASE_CHANNEL}, ${dispatchId}) FROM (SELECT count(*) FROM ended) AS done`;
  }

  /** Last step of ending: the final status (and why, for an unreachable container). */
  async function finalize(dispatchId: string, status: DispatchStatus, reason: string): Promise<void> {
    const unreachable = status === 'container_unreachable';
    await db.$executeRaw`
      WITH ended AS (
        UPDATE agent_dispatches SET status = ${status}::"DispatchStatus", ended_at = COALESCE(ended_at, now()), updated_at = now(),
          last_error_code = CASE WHEN ${unreachable} THEN 'container_unreachable' ELSE last_error_code END,
          last_error_message = CASE WHEN ${unreachable} THEN ${reason} ELSE last_error_message END,
          last_error_at = CASE WHEN ${unreachable} THEN now() ELSE last_error_at END
        WHERE id = ${dispatchId}::uuid RETURNING 1
      )
      SELECT pg_notify(${LEASE_CHANNEL}, ${dispatchId}) FROM (SELECT count(*) FROM ended) AS done`;
  }

  /** Forgets the dispatch's tokens: nothing is kept that no one may use. */
  async function wipe(dispatchId: string): Promise<void> {
    await db.$executeRaw`UPDATE token_leases SET token_enc = NULL, previous_token_enc = NULL WHERE dispatch_id = ${dispatchId}::uuid`;
  }

  return {
    /** The dispatch (with what a push needs) and its lease, decrypted; null when it does not exist. */
    async read(dispatchId: string): Promise<CurrentLease | null> {
      const r = await row(dispatchId);
      if (!r) return null;
      return {
        dispatchId: r.id,
        rigId: r.rig_id,
        status: r.status,
        ended: r.ended_at !== null || ENDED_STATUSES.includes(r.status),
        containerUrl: r.container_url,
        containerTokenEnc: r.container_token_enc,
        generation: r.generation ?? 0,
        token: r.token_enc === null ? null : secrets.decrypt(r.token_enc, leaseTokenContext(r.id)),
        username: r.username ?? '',
        expiresAt: r.expires_at,
        source: r.credential_source ?? 'none',
        fingerprint: r.fingerprint ?? '',
        mintKey: r.mint_key ?? '',
        seen: r,
      };
    },

    /**
     * Stores `credential` as the dispatch's next generation and marks the dispatch active, with the
     * `minted` event and the cache notification, atomically. Returns the unchanged lease (reused)
     * when the credential is the one the dispatch already holds. Given the row the caller read
     * (`seen`), it is one guarded statement, which holds while nothing was written since (the
     * workflow is the lease's only writer); otherwise, or when the guard fails, it locks the
     * dispatch row and decides again inside a transaction.
     */
    async write(dispatchId: string, credential: Credential, mintKey: string, seen?: LeaseRow): Promise<WriteResult> {
      const fp = fingerprint(credential.token);
      if (seen && !isEnded(seen)) {
        const step = plan(seen, credential, mintKey, fp);
        if (step.kind === 'duplicate') return step.result;
        const done =
          step.kind === 'reused' ? await touch(db, dispatchId, seen) : await storeNext(db, dispatchId, credential, mintKey, fp, step, seen);
        if (done) return step.result;
      }
      return db.$transaction(async (tx) => {
        // Lock the dispatch row: concurrent writers (a retried activity) serialise here.
        const [current] = await tx.$queryRaw<LeaseRow[]>`
          SELECT d.id, d.status::text AS status, d.ended_at, l.generation, l.credential_source::text AS credential_source, l.token_enc,
                 l.previous_token_enc, l.previous_expires_at, l.revocable, l.fingerprint, l.expires_at, l.integration_id,
                 l.access::text AS access, l.mint_key
          FROM agent_dispatches d LEFT JOIN token_leases l ON l.dispatch_id = d.id
          WHERE d.id = ${dispatchId}::uuid FOR UPDATE OF d`;
        if (!current || isEnded(current)) throw new DispatchEndedError(dispatchId);
        const step = plan(current, credential, mintKey, fp);
        if (step.kind === 'reused') await touch(tx, dispatchId);
        if (step.kind === 'next') await storeNext(tx, dispatchId, credential, mintKey, fp, step);
        return step.result;
      }, TX_OPTIONS);
    },

    /**
     * Whether the dispatch holds `token`, as its current lease or as the one that lease replaced (kept
     * for the stop to revoke): a mint whose store failed asks this before revoking what it minted.
     */
    async holds(dispatchId: string, token: string): Promise<boolean> {
      const r = await row(dispatchId);
      if (!r || r.token_enc === null) return false;
      if (r.fingerprint !== null && safeEqual(r.fingerprint, fingerprint(token))) return true;
      return r.previous_token_enc !== null && safeEqual(secrets.decrypt(r.previous_token_enc, previousContext(dispatchId)), token);
    },

    /**
     * The GitHub tokens this dispatch still holds (current and replaced), for revocation at stop: those
     * not expired, or expired less than REVOKE_AFTER_EXPIRY_MS ago.
     */
    async revocableTokens(dispatchId: string): Promise<RevocableToken[]> {
      const r = await row(dispatchId);
      const since = new Date(Date.now() - REVOKE_AFTER_EXPIRY_MS);
      const out: RevocableToken[] = [];
      if (!r?.revocable) return out;
      if (r.previous_token_enc && r.previous_expires_at && r.previous_expires_at > since) {
        out.push({
          token: secrets.decrypt(r.previous_token_enc, previousContext(dispatchId)),
          which: 'replaced',
          expiresAt: r.previous_expires_at,
        });
      }
      if (r.token_enc && (r.expires_at === null || r.expires_at > since))
        out.push({ token: secrets.decrypt(r.token_enc, leaseTokenContext(dispatchId)), which: 'current', expiresAt: r.expires_at });
      return out;
    },

    /**
     * Ends a dispatch, the one way it is done: first marked ended (pulls answer 410 at once, and a
     * mint still under way can no longer store a token that `revoke` would miss: it revokes its
     * own, DispatchEndedError), then `revoke` runs, then all of its tokens are forgotten, and only
     * then the final status is set, so `stopped` means revoked where the provider allows.
     */
    async close(dispatchId: string, ending: Pick<FinishDispatchInput, 'status' | 'reason'>, revoke?: () => Promise<void>): Promise<void> {
      await end(dispatchId);
      await revoke?.();
      await wipe(dispatchId);
      await finalize(dispatchId, ending.status, ending.reason);
    },

    /**
     * Forgets the tokens of a dispatch that goes on without one (a permanent failure: the rig was
     * disconnected, its installation or repository is gone): API instances drop their copy on the
     * NOTIFY, and pulls answer the recorded error instead of a token for what the rig no longer has.
     */
    async withdraw(dispatchId: string): Promise<void> {
      await db.$executeRaw`
        WITH wiped AS (
          UPDATE token_leases SET token_enc = NULL, previous_token_enc = NULL
          WHERE dispatch_id = ${dispatchId}::uuid AND (token_enc IS NOT NULL OR previous_token_enc IS NOT NULL) RETURNING 1
        )
        SELECT pg_notify(${LEASE_CHANNEL}, ${dispatchId}) FROM (SELECT count(*) AS n FROM wiped) AS done WHERE n > 0`;
    },

    /** Records a failed mint on the dispatch so GET /api/dispatches/:id shows why. */
    async recordFailure(
      dispatchId: string,
      status: 'starting' | 'degraded' | 'credential_error',
      code: string,
      message: string,
    ): Promise<void> {
      await db.$executeRaw`
        UPDATE agent_dispatches SET status = ${status}::"DispatchStatus", last_error_code = ${code}, last_error_message = ${message},
          last_error_at = now(), updated_at = now()
        WHERE id = ${dispatchId}::uuid AND status NOT IN ('stopped', 'container_unreachable') AND ended_at IS NULL`;
    },

    /**
     * Appends to the audit ledger, under the event order rule (lib/lease-statements.ts).
     * Nothing is written for a dispatch that no longer exists.
     */
    async recordEvent(
      dispatchId: string,
      kind: EventKind,
      e: { source: CredentialSource; generation: number; fingerprint?: string | null; expiresAt?: Date | null; detail?: string },
    ): Promise<void> {
      await db.$executeRaw`
        WITH d AS (SELECT id FROM agent_dispatches WHERE id = ${dispatchId}::uuid FOR NO KEY UPDATE)
        INSERT INTO token_events (dispatch_id, kind, source, generation, fingerprint, expires_at, detail)
        SELECT d.id, ${kind}::"TokenEventKind", ${e.source}::"CredentialSource", ${e.generation}::int,
               ${e.fingerprint ?? null}, ${e.expiresAt ?? null}, ${e.detail ?? null}
        FROM d`;
    },
  };
}

export type LeaseStore = ReturnType<typeof createLeaseStore>;

function iso(d: Date | null): string | null {
  return d === null ? null : d.toISOString();
}
