// The statements behind lib/project-tokens.ts: the rig's row locked (created when missing), a
// token saved under its version, a refusal recorded, a row detached from its rig, idle rows claimed.
import type { Db } from './db';
import type { ProjectAccessToken } from './providers/types';
import type { SecretBox } from './secrets';
import { projectTokenContext } from './secret-contexts';

/** Raw queries of the client or of a transaction. */
type Sql = Pick<Db, '$queryRaw' | '$executeRaw'>;

export interface TokenRow {
  id: string;
  rig_id: string | null;
  integration_id: string;
  project_id: bigint;
  access: string;
  gitlab_token_id: bigint | null;
  token_enc: string | null;
  expires_on: string | null;
  usable_until: Date | null;
  version: number;
  status: 'active' | 'fallback' | 'revoking' | 'revoked';
  fallback_reason: string | null;
  last_tried_at: Date | null;
}

/** A token GitLab issued, to be saved over the version it replaces. */
export interface IssuedSave {
  rowId: string;
  fromVersion: number;
  token: ProjectAccessToken;
  rotated: boolean;
  usableUntil: Date;
}

/** Whether the rig still points at this integration and project with this access, its row share-locked for the transaction. */
export async function stillConnected(
  sql: Sql,
  rig: { rigId: string; integrationId: string; projectId: bigint; access: string },
): Promise<boolean> {
  const [r] = await sql.$queryRaw<Array<{ platform_integration_id: string | null; repository_id: bigint | null; access: string }>>`
    SELECT platform_integration_id, repository_id, access::text AS access FROM gastown_rigs WHERE id = ${rig.rigId}::uuid FOR SHARE`;
  return r !== undefined && r.platform_integration_id === rig.integrationId && r.repository_id === rig.projectId && r.access === rig.access;
}

/** The rig's row, locked for the transaction; a rig without one gets an empty one (`revoked`: holds nothing). */
export async function lockRow(
  sql: Sql,
  rig: { rigId: string; integrationId: string; projectId: bigint; access: string },
  newId: string,
): Promise<TokenRow> {
  await sql.$executeRaw`
    INSERT INTO rig_project_tokens (id, rig_id, integration_id, project_id, access, status, updated_at)
    VALUES (${newId}::uuid, ${rig.rigId}::uuid, ${rig.integrationId}::uuid, ${rig.projectId}, ${rig.access}::"RigAccess", 'revoked', now())
    ON CONFLICT (rig_id) DO NOTHING`;
  const [row] = await sql.$queryRaw<TokenRow[]>`
    SELECT id, rig_id, integration_id, project_id, access::text AS access, gitlab_token_id, token_enc, expires_on, usable_until, version,
           status::text AS status, fallback_reason, last_tried_at
    FROM rig_project_tokens WHERE rig_id = ${rig.rigId}::uuid FOR UPDATE`;
  return row;
}

/** Saves a created or rotated token, only over the version read; returns the rows written (0 or 1). */
export function saveIssued(sql: Pick<Db, '$executeRaw'>, secrets: SecretBox, s: IssuedSave): Promise<number> {
  return sql.$executeRaw`
    UPDATE rig_project_tokens
    SET gitlab_token_id = ${s.token.id}, token_enc = ${secrets.encrypt(s.token.token, projectTokenContext(s.rowId))},
        expires_on = ${s.token.expiresAt}, usable_until = ${s.usableUntil}, version = version + 1, status = 'active',
        fallback_code = NULL, fallback_reason = NULL, last_tried_at = now(), issued_at = now(),
        rotated_at = CASE WHEN ${s.rotated} THEN now() ELSE rotated_at END, revoked_at = NULL, updated_at = now()
    WHERE id = ${s.rowId}::uuid AND version = ${s.fromVersion}::int`;
}

/** Records that GitLab refused (the grant stands in), and when it was asked. */
export async function saveFallback(sql: Sql, rowId: string, code: string, reason: string): Promise<void> {
  await sql.$executeRaw`
    UPDATE rig_project_tokens
    SET status = 'fallback', fallback_code = ${code}, fallback_reason = ${reason}, last_tried_at = now(), token_enc = NULL,
        gitlab_token_id = NULL, expires_on = NULL, usable_until = NULL, version = version + 1, updated_at = now()
    WHERE id = ${rowId}::uuid`;
}

/**
 * Detaches the rig's row: one holding a token becomes `revoking` without a rig (revoked apart from
 * it), any other is dropped. Returns the ids to revoke. The version moves, as it does when the idle
 * sweep claims a row, so a renewal that lost its lock cannot save over it (saveIssued).
 */
export async function detachStatements(sql: Sql, rigId: string): Promise<string[]> {
  const held = await sql.$queryRaw<Array<{ id: string }>>`
    UPDATE rig_project_tokens SET rig_id = NULL, status = 'revoking', version = version + 1, updated_at = now()
    WHERE rig_id = ${rigId}::uuid AND token_enc IS NOT NULL AND status IN ('active', 'revoking')
    RETURNING id`;
  await sql.$executeRaw`DELETE FROM rig_project_tokens WHERE rig_id = ${rigId}::uuid`;
  return held.map((r) => r.id);
}

/**
 * Marks `revoking` the tokens of rigs with no running dispatch for `idleSeconds` (since the last
 * one ended, or since the token was issued). Rows another worker holds are skipped.
 */
export function claimIdle(sql: Sql, idleSeconds: number, batch: number): Promise<Array<{ id: string; rig_id: string }>> {
  return sql.$queryRaw`
    UPDATE rig_project_tokens t SET status = 'revoking', version = version + 1, updated_at = now()
    WHERE t.id IN (
      SELECT c.id FROM rig_project_tokens c
      WHERE c.status = 'active' AND c.rig_id IS NOT NULL
        AND NOT EXISTS (SELECT 1 FROM agent_dispatches d WHERE d.rig_id = c.rig_id AND d.ended_at IS NULL
                        AND d.status NOT IN ('stopped', 'container_unreachable'))
        AND GREATEST(COALESCE(c.issued_at, c.created_at),
                     COALESCE((SELECT max(d.ended_at) FROM agent_dispatches d WHERE d.rig_id = c.rig_id), c.created_at))
            < now() - make_interval(secs => ${idleSeconds}::float8)
      ORDER BY c.updated_at LIMIT ${batch}::int
      FOR UPDATE SKIP LOCKED)
    RETURNING t.id, t.rig_id`;
}
