// Owners: the tenants whose towns and integrations these are. Rows appear on first sign-in, or when
// admin names a new owner_id (towns, integrations, tokens, sign-in links).
import type { Db } from '../../lib/db';

/** Creates the owner row when it does not exist yet (admin may name any new owner id). */
export async function ensureOwner(db: Pick<Db, 'owner'>, ownerId: string): Promise<void> {
  await db.owner.createMany({ data: [{ id: ownerId }], skipDuplicates: true });
}

export interface OwnerView {
  id: string;
  display_name: string | null;
  avatar_url: string | null;
  logins: Array<{ provider: 'github' | 'gitlab'; login: string }>;
}

export function createOwnerService(deps: { db: Db }) {
  const { db } = deps;
  return {
    ensure: (ownerId: string) => ensureOwner(db, ownerId),

    /** The owner with the accounts they sign in with, or null. */
    async get(ownerId: string): Promise<OwnerView | null> {
      const row = await db.owner.findUnique({
        where: { id: ownerId },
        include: { identities: { select: { provider: true, login: true }, orderBy: { createdAt: 'asc' } } },
      });
      if (!row) return null;
      return { id: row.id, display_name: row.displayName, avatar_url: row.avatarUrl, logins: row.identities };
    },

    /** Display names by owner id (admin's owner column); owners without one are left out. */
    async names(ownerIds: string[]): Promise<Map<string, string>> {
      const rows = await db.owner.findMany({
        where: { id: { in: ownerIds }, displayName: { not: null } },
        select: { id: true, displayName: true },
      });
      return new Map(rows.map((r) => [r.id, r.displayName as string]));
    },
  };
}

export type OwnerService = ReturnType<typeof createOwnerService>;
