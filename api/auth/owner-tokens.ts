// Owners' API tokens (`rco_…`) for their own automation. Only the SHA-256 is stored, and every
// request looks it up in Postgres, so a deleted token answers 401 on every API instance at once.
import type { Db } from '../../lib/db';
import { newOpaqueToken, sha256Hex } from '../../lib/secrets';
import { notFound } from '../errors';

/** last_used_at is written at most this often per token. */
const TOUCH_EVERY_MS = 60_000;
export const OWNER_TOKEN_PREFIX = 'rco';

const present = (t: { id: string; name: string; createdAt: Date; lastUsedAt: Date | null }) => ({
  id: t.id,
  name: t.name,
  created_at: t.createdAt.toISOString(),
  last_used_at: t.lastUsedAt?.toISOString() ?? null,
});

export function createOwnerTokenStore(deps: { db: Db }) {
  const { db } = deps;

  return {
    /** A new token for `ownerId`; the secret is in this answer only. */
    async create(ownerId: string, name: string) {
      const token = newOpaqueToken(OWNER_TOKEN_PREFIX);
      const row = await db.ownerApiToken.create({ data: { ownerId, name, tokenHash: sha256Hex(token) } });
      return { id: row.id, name: row.name, token, owner_id: ownerId, created_at: row.createdAt.toISOString() };
    },

    async list(ownerId: string) {
      const rows = await db.ownerApiToken.findMany({ where: { ownerId }, orderBy: { createdAt: 'desc' } });
      return { tokens: rows.map(present) };
    },

    async delete(ownerId: string, id: string): Promise<void> {
      const { count } = await db.ownerApiToken.deleteMany({ where: { id, ownerId } });
      if (count === 0) throw notFound('token', 'token_id');
    },

    /** The owner a presented token belongs to, or null; notes its use at most once a minute. */
    async find(token: string, now = new Date()): Promise<{ ownerId: string; tokenId: string } | null> {
      if (!token.startsWith(`${OWNER_TOKEN_PREFIX}_`) || token.length > 200) return null;
      const row = await db.ownerApiToken.findUnique({ where: { tokenHash: sha256Hex(token) } });
      if (!row) return null;
      if (!row.lastUsedAt || now.getTime() - row.lastUsedAt.getTime() >= TOUCH_EVERY_MS) {
        await db.ownerApiToken.updateMany({ where: { id: row.id }, data: { lastUsedAt: now } });
      }
      return { ownerId: row.ownerId, tokenId: row.id };
    },
  };
}

export type OwnerTokenStore = ReturnType<typeof createOwnerTokenStore>;
