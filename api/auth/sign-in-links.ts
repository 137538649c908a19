// One-time sign-in links made by admin: how a host product signs its already-signed-in users into
// the dashboard. Valid at most 60 s; consumed by one guarded UPDATE … RETURNING, so a second or a
// late use signs nobody in, however many API instances race for it.
import { randomBytes } from 'node:crypto';
import type { Config } from '../../lib/config';
import type { Db } from '../../lib/db';
import { sha256Hex } from '../../lib/secrets';

export const SIGN_IN_LINK_TTL_MS = 60_000;

export function createSignInLinks(deps: { db: Db; config: Config }) {
  const { db, config } = deps;
  return {
    async create(ownerId: string, now = new Date()): Promise<{ url: string; expires_at: string }> {
      await db.signInLink.deleteMany({ where: { expiresAt: { lt: new Date(now.getTime() - SIGN_IN_LINK_TTL_MS) } } });
      const token = randomBytes(32).toString('base64url');
      const expiresAt = new Date(now.getTime() + SIGN_IN_LINK_TTL_MS);
      await db.signInLink.create({ data: { ownerId, tokenHash: sha256Hex(token), createdAt: now, expiresAt } });
      return { url: `${config.publicUrl}/login/link/${token}`, expires_at: expiresAt.toISOString() };
    },

    /** The owner the link signs in, once; null when unknown, used or expired. */
    async consume(token: string, now = new Date()): Promise<string | null> {
      if (token.length > 100) return null;
      const [row] = await db.signInLink.updateManyAndReturn({
        where: { tokenHash: sha256Hex(token), usedAt: null, expiresAt: { gt: now } },
        data: { usedAt: now },
        select: { ownerId: true },
      });
      return row?.ownerId ?? null;
    },
  };
}

export type SignInLinks = ReturnType<typeof createSignInLinks>;
