// The current token of each dispatch, encrypted at rest. The dispatch's workflow (through its
// activities) is the only writer; the pull route reads. Every write NOTIFYs `repo_connect_leases`
// in the same transaction, so API instances drop cached copies the moment a lease changes.
import type { Db } from './db';
import { fingerprint, type SecretBox } from './secrets';
import { leaseTokenContext } from './secret-contexts';
import type { CredentialSource, DispatchStatus, LeaseMeta } from '../workflows/git-token-types';

export const LEASE_CHANNEL = 'repo_connect_leases';
export const ENDED_STATUSES: DispatchStatus[] = ['stopped', 'container_unreachable'];

export interface Credential {
  token: string;
  /** True for per-dispatch GitHub installation tokens: the only kind a stop revokes. */
  revocable: boolean;
  /** null only for static town tokens. */
  expiresAt: Date | null;
  username: string;
  source: CredentialSource;
  /** Set for GitLab, whose grant several dispatches share. */
  integrationId: string | null;
}

export interface CurrentLease {
  dispatchId: string;
  rigId: string;
  status: DispatchStatus;
  generation: number;
  token: string | null;
  username: string;
  expiresAt: Date | null;
  source: CredentialSource;
  fingerprint: string;
  mintKey: string;
}

export interface WriteResult {
  meta: LeaseMeta;
  /** Another attempt of the same mint already stored its token: this attempt's token is surplus. */
  duplicate: boolean;
  /** Replaced GitHub tokens nobody will hold any more (the rig switched source): revoke them now. */
  revokeNow: string[];
}

export type EventKind = 'minted' | 'pushed' | 'push_failed' | 'pulled' | 'refresh_failed' | 'revoked';

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

export function createLeaseStore(deps: { db: Db; secrets: SecretBox }) {
  const { db, secrets } = deps;

  async function read(dispatchId: string): Promise<CurrentLease | null> {
    const row = await db.agentDispatch.findUnique({
      where: { id: dispatchId },
      select: { id: true, rigId: true, status: true, lease: true },
    });
    if (!row?.lease) return null;
    const l = row.lease;
    return {
      dispatchId: row.id,
      rigId: row.rigId,
      status: row.status,
      generation: l.generation,
      token: l.tokenEnc === null ? null : secrets.decrypt(l.tokenEnc, leaseTokenContext(row.id)),
      username: l.username,
      expiresAt: l.expiresAt,
      source: l.credentialSource,
      fingerprint: l.fingerprint,
      mintKey: l.mintKey,
    };
  }

  return {
    read,

    /**
     * Stores `credential` as the dispatch's next generation and marks the dispatch active, all in
     * one transaction with the `minted` event and the cache notification. Returns the unchanged
     * lease (reused) when the credential is the one the dispatch already holds.
     */
    async write(dispatchId: string, credential: Credential, mintKey: string): Promise<WriteResult> {
      const fp = fingerprint(credential.token);
      return db.$transaction(async (tx) => {
        // Lock the dispatch row: concurrent writers (a retried activity) serialise here.
        const locked = await tx.$queryRaw<{ status: DispatchStatus }[]>`
          SELECT status FROM agent_dispatches WHERE id = ${dispatchId}::uuid FOR UPDATE`;
        if (locked.length === 0 || ENDED_STATUSES.includes(locked[0].status)) throw new DispatchEndedError(dispatchId);
        const current = await tx.tokenLease.findUnique({ where: { dispatchId } });
        const now = new Date();
        const currentMeta = (reused: boolean): LeaseMeta => ({
          generation: current!.generation,
          expiresAt: iso(current!.expiresAt),
          source: current!.credentialSource,
          fingerprint: current!.fingerprint,
          reused,
        });
        if (current && current.tokenEnc !== null && current.mintKey === mintKey && current.fingerprint !== fp) {
          return { meta: currentMeta(false), duplicate: true, revokeNow: [] };
        }
        if (current && current.tokenEnc !== null && current.fingerprint === fp) {
          await tx.agentDispatch.update({
            where: { id: dispatchId },
            data: { status: 'active', refreshedAt: now, lastErrorCode: null, lastErrorMessage: null, lastErrorAt: null },
          });
          return { meta: currentMeta(true), duplicate: false, revokeNow: [] };
        }
        const generation = (current?.generation ?? 0) + 1;
        // Replaced GitHub tokens stay valid for up to the margin. Within one integration the last
        // one is kept (encrypted) for the stop to revoke; older ones, or any after a switch of
        // source, are revoked by the caller now. Town and GitLab tokens are never kept or revoked.
        const valid = (enc: string | null, exp: Date | null) => enc !== null && exp !== null && exp > now;
        const replacedRevocable = current !== null && current.revocable && valid(current.tokenEnc, current.expiresAt);
        const sameIntegration = current !== null && current.integrationId === credential.integrationId;
        const revokeNow: string[] = [];
        if (current?.previousTokenEnc && valid(current.previousTokenEnc, current.previousExpiresAt)) {
          revokeNow.push(secrets.decrypt(current.previousTokenEnc, `${leaseTokenContext(dispatchId)}:previous`));
        }
        const replacedToken = replacedRevocable ? secrets.decrypt(current!.tokenEnc!, leaseTokenContext(dispatchId)) : null;
        const keepPrevious = replacedToken !== null && credential.revocable && sameIntegration;
        if (replacedToken !== null && !keepPrevious) revokeNow.push(replacedToken);
        const data = {
          previousTokenEnc: keepPrevious ? secrets.encrypt(replacedToken!, `${leaseTokenContext(dispatchId)}:previous`) : null,
          previousExpiresAt: keepPrevious ? current!.expiresAt : null,
          revocable: credential.revocable,
          generation,
          credentialSource: credential.source,
          tokenEnc: secrets.encrypt(credential.token, leaseTokenContext(dispatchId)),
          username: credential.username,
          fingerprint: fp,
          expiresAt: credential.expiresAt,
          integrationId: credential.integrationId,
          mintKey,
          createdAt: now,
        };
        await tx.tokenLease.upsert({ where: { dispatchId }, create: { dispatchId, ...data }, update: data });
        await tx.agentDispatch.update({
          where: { id: dispatchId },
          data: {
            status: 'active',
            credentialSource: credential.source,
            generation,
            tokenExpiresAt: credential.expiresAt,
            refreshedAt: now,
            lastErrorCode: null,
            lastErrorMessage: null,
            lastErrorAt: null,
          },
        });
        await tx.tokenEvent.create({
          data: { dispatchId, kind: 'minted', source: credential.source, generation, fingerprint: fp, expiresAt: credential.expiresAt, at: now },
        });
        await tx.$executeRaw`SELECT pg_notify(${LEASE_CHANNEL}, ${dispatchId})`;
        return {
          meta: { generation, expiresAt: iso(credential.expiresAt), source: credential.source, fingerprint: fp, reused: false },
          duplicate: false,
          revokeNow,
        };
      }, TX_OPTIONS);
    },

    /** The lease written by `mintKey`, if it is still current (a retried mint returns it unchanged). */
    async byMintKey(dispatchId: string, mintKey: string): Promise<LeaseMeta | null> {
      const l = await db.tokenLease.findUnique({ where: { dispatchId } });
      if (!l || l.mintKey !== mintKey || l.tokenEnc === null) return null;
      return { generation: l.generation, expiresAt: iso(l.expiresAt), source: l.credentialSource, fingerprint: l.fingerprint, reused: false };
    },

    /** The GitHub tokens this dispatch still holds (current and replaced), for revocation at stop. */
    async revocableTokens(dispatchId: string): Promise<Array<{ token: string; which: 'current' | 'replaced' }>> {
      const l = await db.tokenLease.findUnique({ where: { dispatchId } });
      const now = new Date();
      const out: Array<{ token: string; which: 'current' | 'replaced' }> = [];
      if (!l?.revocable) return out;
      if (l.previousTokenEnc && l.previousExpiresAt && l.previousExpiresAt > now) {
        out.push({ token: secrets.decrypt(l.previousTokenEnc, `${leaseTokenContext(dispatchId)}:previous`), which: 'replaced' });
      }
      if (l.tokenEnc && (l.expiresAt === null || l.expiresAt > now)) out.push({ token: secrets.decrypt(l.tokenEnc, leaseTokenContext(dispatchId)), which: 'current' });
      return out;
    },

    /** Marks the dispatch ended and tells every cache, so pulls answer 410 from now on. */
    async end(dispatchId: string, status: DispatchStatus, reason: string): Promise<void> {
      await db.$transaction(async (tx) => {
        await tx.agentDispatch.updateMany({
          where: { id: dispatchId },
          data: {
            status,
            endedAt: new Date(),
            ...(status === 'container_unreachable'
              ? { lastErrorCode: 'container_unreachable', lastErrorMessage: reason, lastErrorAt: new Date() }
              : {}),
          },
        });
        await tx.$executeRaw`SELECT pg_notify(${LEASE_CHANNEL}, ${dispatchId})`;
      }, TX_OPTIONS);
    },

    /** Forgets the dispatch's tokens: nothing is kept that no one may use. */
    async wipe(dispatchId: string): Promise<void> {
      await db.tokenLease.updateMany({ where: { dispatchId }, data: { tokenEnc: null, previousTokenEnc: null } });
    },

    /** Records a failed mint on the dispatch so GET /api/dispatches/:id shows why. */
    async recordFailure(dispatchId: string, status: 'starting' | 'degraded' | 'credential_error', code: string, message: string): Promise<void> {
      await db.agentDispatch.updateMany({
        where: { id: dispatchId, status: { notIn: ENDED_STATUSES } },
        data: { status, lastErrorCode: code, lastErrorMessage: message, lastErrorAt: new Date() },
      });
    },

    /** Appends to the audit ledger. */
    async recordEvent(
      dispatchId: string,
      kind: EventKind,
      e: { source: CredentialSource; generation: number; fingerprint?: string | null; expiresAt?: Date | null; detail?: string },
    ): Promise<void> {
      await db.tokenEvent.create({
        data: { dispatchId, kind, source: e.source, generation: e.generation, fingerprint: e.fingerprint ?? null, expiresAt: e.expiresAt ?? null, detail: e.detail },
      });
    },
  };
}

export type LeaseStore = ReturnType<typeof createLeaseStore>;

function iso(d: Date | null): string | null {
  return d === null ? null : d.toISOString();
}
