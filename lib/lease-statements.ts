// The two statements that store a lease: each writes the lease, the dispatch, the ledger and the
// cache notification at once, and, given the row the caller read, only while nothing changed since.
//
// The event order rule: every insert into token_events locks its dispatch's agent_dispatches row
// (FOR UPDATE or FOR NO KEY UPDATE) before its id is drawn and holds it until it commits, as
// storeNext's statement does. One dispatch's events then commit in id order, so a client paging
// them by id (GET /api/dispatches/:id/events) never passes an id whose row is still to commit.
// Ids come from one sequence: without the lock, an event could take id 10, commit after another
// took 11 and was read, and be skipped by every later page.
import type { Db } from './db';
import type { Credential, LeaseRow } from './lease-types';

export const LEASE_CHANNEL = 'repo_connect_leases';
/** NOTIFYed by a trigger on every insert into agent_dispatches (migration 20261204200000_hardening). */
export const DISPATCH_CREATED_CHANNEL = 'repo_connect_dispatch_created';

/** Raw queries of the client or of a transaction. */
type Sql = Pick<Db, '$queryRaw'>;

/**
 * Marks the dispatch active again for a credential it already holds. With `seen`, only while the
 * lease is still the one read and the dispatch has not ended; returns whether it was written.
 */
export async function touch(sql: Sql, dispatchId: string, seen?: LeaseRow): Promise<boolean> {
  const now = new Date();
  const rows = await sql.$queryRaw<unknown[]>`
    UPDATE agent_dispatches d SET status = 'active', refreshed_at = ${now}, last_error_code = NULL,
      last_error_message = NULL, last_error_at = NULL, updated_at = ${now}
    WHERE d.id = ${dispatchId}::uuid
      AND (${seen === undefined} OR (d.ended_at IS NULL AND d.status NOT IN ('stopped', 'container_unreachable')
        AND EXISTS (SELECT 1 FROM token_leases l WHERE l.dispatch_id = d.id AND l.generation = ${seen?.generation ?? 0}::int
                    AND l.fingerprint = ${seen?.fingerprint ?? ''})))
    RETURNING 1 AS written`;
  return rows.length > 0;
}

/**
 * Writes a new generation: the lease, the dispatch's status, the `minted` event and the cache
 * notification in one statement. With `seen`, the dispatch row is locked in the statement and
 * the write happens only while it runs and its lease is still the generation read; returns
 * whether it was written.
 */
export async function storeNext(
  sql: Sql,
  dispatchId: string,
  credential: Credential,
  mintKey: string,
  fp: string,
  step: { generation: number; tokenEnc: string; previousEnc: string | null; previousExpiresAt: Date | null },
  seen?: LeaseRow,
): Promise<boolean> {
  const now = new Date();
  const guarded = seen !== undefined;
  const expected = seen?.generation ?? 0;
  const { generation, tokenEnc, previousEnc, previousExpiresAt } = step;
  const source = credential.source;
  const rows = await sql.$queryRaw<unknown[]>`
    WITH d AS (
      SELECT id FROM agent_dispatches
      WHERE id = ${dispatchId}::uuid AND (NOT ${guarded} OR (ended_at IS NULL AND status NOT IN ('stopped', 'container_unreachable')))
      FOR UPDATE
    ), lease AS (
      INSERT INTO token_leases (dispatch_id, generation, credential_source, token_enc, previous_token_enc, previous_expires_at,
                                revocable, username, fingerprint, expires_at, integration_id, access, mint_key, created_at)
      SELECT d.id, ${generation}::int, ${source}::"CredentialSource", ${tokenEnc}, ${previousEnc}, ${previousExpiresAt},
             ${credential.revocable}, ${credential.username}, ${fp}, ${credential.expiresAt}, ${credential.integrationId}::uuid,
             ${credential.access ?? null}::"RigAccess", ${mintKey}, ${now}
      FROM d
      ON CONFLICT (dispatch_id) DO UPDATE SET
        generation = EXCLUDED.generation, credential_source = EXCLUDED.credential_source, token_enc = EXCLUDED.token_enc,
        previous_token_enc = EXCLUDED.previous_token_enc, previous_expires_at = EXCLUDED.previous_expires_at,
        revocable = EXCLUDED.revocable, username = EXCLUDED.username, fingerprint = EXCLUDED.fingerprint,
        expires_at = EXCLUDED.expires_at, integration_id = EXCLUDED.integration_id, access = EXCLUDED.access, mint_key = EXCLUDED.mint_key,
        created_at = EXCLUDED.created_at
      WHERE NOT ${guarded} OR token_leases.generation = ${expected}::int
      RETURNING dispatch_id
    ), dispatch AS (
      UPDATE agent_dispatches SET status = 'active', credential_source = ${source}::"CredentialSource", generation = ${generation}::int,
        credential_scope = ${credential.scope}::"CredentialScope", credential_scope_reason = ${credential.scopeReason},
        token_expires_at = ${credential.expiresAt}, refreshed_at = ${now}, last_error_code = NULL, last_error_message = NULL,
        last_error_at = NULL, updated_at = ${now}
      WHERE id IN (SELECT dispatch_id FROM lease) RETURNING 1
    ), event AS (
      INSERT INTO token_events (dispatch_id, kind, source, generation, fingerprint, expires_at, at)
      SELECT dispatch_id, 'minted', ${source}::"CredentialSource", ${generation}::int, ${fp}, ${credential.expiresAt}, ${now} FROM lease
      RETURNING 1
    )
    SELECT 1 AS written FROM lease, dispatch, event, LATERAL (SELECT pg_notify(${LEASE_CHANNEL}, ${dispatchId})) AS notified`;
  return rows.length > 0;
}
