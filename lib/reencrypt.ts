// Re-encrypts every secret column under the current SECRETS_KEY, so a key listed in
// SECRETS_KEY_PREVIOUS can be retired. Rows are rewritten one at a time with a compare-and-swap
// (`WHERE column = <the ciphertext read>`): a concurrent writer (a refresh, a lease write) always
// wins, and what it wrote is under the current key already. Plain text never leaves this function.
import type { Client, Pool } from 'pg';
import type { SecretBox } from './secrets';
import {
  containerTokenContext,
  gitlabTokenContext,
  identityTokenContext,
  leaseTokenContext,
  projectTokenContext,
  pendingRevocationContext,
  townTokenContext,
} from './secret-contexts';

export interface Column {
  table: string;
  column: string;
  /** Primary-key column(s) and the SQL selecting them with the row's context inputs. */
  key: string[];
  select: string;
  context: (row: Record<string, string>) => string;
}

/** Every secret column, with what its statements need. */
export const SECRET_COLUMNS: readonly Column[] = [
  {
    table: 'town_git_auth',
    column: 'token_enc',
    key: ['id'],
    select: 'id::text, town_id::text, host',
    context: (r) => townTokenContext(r.town_id, r.host),
  },
  {
    table: 'platform_integrations',
    column: 'access_token_enc',
    key: ['id'],
    select: 'id::text',
    context: (r) => gitlabTokenContext(r.id, 'access'),
  },
  {
    table: 'platform_integrations',
    column: 'refresh_token_enc',
    key: ['id'],
    select: 'id::text',
    context: (r) => gitlabTokenContext(r.id, 'refresh'),
  },
  {
    table: 'agent_dispatches',
    column: 'container_token_enc',
    key: ['id'],
    select: 'id::text',
    context: (r) => containerTokenContext(r.id),
  },
  {
    table: 'token_leases',
    column: 'token_enc',
    key: ['dispatch_id'],
    select: 'dispatch_id::text',
    context: (r) => leaseTokenContext(r.dispatch_id),
  },
  {
    table: 'token_leases',
    column: 'previous_token_enc',
    key: ['dispatch_id'],
    select: 'dispatch_id::text',
    context: (r) => `${leaseTokenContext(r.dispatch_id)}:previous`,
  },
  {
    table: 'owner_identities',
    column: 'user_token_enc',
    key: ['id'],
    select: 'id::text',
    context: (r) => identityTokenContext(r.id, 'access'),
  },
  {
    table: 'owner_identities',
    column: 'refresh_token_enc',
    key: ['id'],
    select: 'id::text',
    context: (r) => identityTokenContext(r.id, 'refresh'),
  },
  {
    table: 'rig_project_tokens',
    column: 'token_enc',
    key: ['id'],
    select: 'id::text',
    context: (r) => projectTokenContext(r.id),
  },
  {
    table: 'pending_revocations',
    column: 'token_enc',
    key: ['id'],
    select: 'id::text',
    context: (r) => pendingRevocationContext(r.id),
  },
];

export interface ReencryptCount {
  /** `table.column` */
  column: string;
  rewritten: number;
  /** Changed by another writer between read and write (already under the current key). */
  raced: number;
  /** Under a key this process does not have, or failing authentication: left as they are. */
  unreadable: number;
}

/** The key id a stored ciphertext (`v1:<key id>:…`) was written under. */
export function keyIdOfCiphertext(sealed: string): string {
  return sealed.split(':')[1] ?? '';
}

const FIRST_UUID = '00000000-0000-0000-0000-000000000000';

/**
 * The statements for one column. Keys are compared as uuids, not text: `id::text = $n` cannot use
 * the primary key, so every row's rewrite scanned the whole table (hours at a few 100,000 dispatches).
 */
export function columnStatements(c: Column): { batch: (batchSize: number) => string; rewrite: string } {
  return {
    // Keyset pagination over the first key column, so rewritten rows are not read again.
    batch: (batchSize) => `SELECT ${c.select}, ${c.column} AS sealed FROM ${c.table}
         WHERE ${c.column} IS NOT NULL AND split_part(${c.column}, ':', 2) <> $1 AND ${c.key[0]} > $2::uuid
         ORDER BY ${c.key[0]} LIMIT ${batchSize}`,
    rewrite: `UPDATE ${c.table} SET ${c.column} = $1 WHERE ${c.column} = $2 AND ${c.key.map((k, i) => `${k} = $${i + 3}::uuid`).join(' AND ')}`,
  };
}

/** Rewrites every ciphertext not under `box`'s current key; returns counts per column. */
export async function reencryptSecrets(db: Pick<Client | Pool, 'query'>, box: SecretBox, batchSize = 500): Promise<ReencryptCount[]> {
  const counts: ReencryptCount[] = [];
  for (const c of SECRET_COLUMNS) {
    const count = { column: `${c.table}.${c.column}`, rewritten: 0, raced: 0, unreadable: 0 };
    const sql = columnStatements(c);
    let after = FIRST_UUID;
    for (;;) {
      const { rows } = await db.query<Record<string, string>>(sql.batch(batchSize), [box.keyId, after]);
      if (rows.length === 0) break;
      for (const row of rows) {
        after = row[c.key[0]];
        let resealed: string;
        try {
          resealed = box.encrypt(box.decrypt(row.sealed, c.context(row)), c.context(row));
        } catch {
          count.unreadable += 1;
          continue;
        }
        const res = await db.query(sql.rewrite, [resealed, row.sealed, ...c.key.map((k) => row[k])]);
        if (res.rowCount === 1) count.rewritten += 1;
        else count.raced += 1;
      }
    }
    counts.push(count);
  }
  return counts;
}

/** How many ciphertexts each column still holds under `keyId` (to know when a key can go). */
export async function countUnderKey(db: Pick<Client | Pool, 'query'>, keyId: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const c of SECRET_COLUMNS) {
    const { rows } = await db.query<{ n: string }>(
      `SELECT count(*)::text AS n FROM ${c.table} WHERE split_part(${c.column}, ':', 2) = $1`,
      [keyId],
    );
    out[`${c.table}.${c.column}`] = Number(rows[0].n);
  }
  return out;
}
