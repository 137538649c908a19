// Towns and their static git-auth tokens (write-only: reads show host, username, fingerprint).
import type { z } from 'zod';
import type { Core } from '../../lib/core';
import { fingerprint } from '../../lib/secrets';
import { townTokenContext } from '../../lib/secret-contexts';
import { badRequest, notFound } from '../errors';
import type { createTownBody, putGitAuthBody } from '../schemas/towns';
import { ensureOwner } from './owners';
import { presentIntegration, presentTown } from './presenters';

type Deps = Pick<Core, 'db' | 'secrets' | 'notifier'>;

export function createTownService(deps: Deps) {
  const { db } = deps;

  async function getTown(townId: string) {
    const town = await db.town.findUnique({ where: { id: townId } });
    if (!town) throw notFound('town', 'town_id');
    return town;
  }

  return {
    getTown,

    /** The most recently created towns (the dashboard's home page; the API has no town list). */
    async recent(limit: number) {
      return db.town.findMany({ orderBy: { createdAt: 'desc' }, take: limit });
    },

    /** An owner's towns by name. */
    async ofOwner(ownerId: string, limit: number) {
      return db.town.findMany({ where: { ownerId }, orderBy: { name: 'asc' }, take: limit });
    },

    async create(body: z.infer<typeof createTownBody> & { owner_id: string }) {
      await ensureOwner(db, body.owner_id);
      return presentTown(await db.town.create({ data: { name: body.name, ownerId: body.owner_id } }));
    },

    async detail(townId: string) {
      const town = await getTown(townId);
      const [integrations, gitAuth, rigs] = await Promise.all([
        db.platformIntegration.findMany({ where: { ownerId: town.ownerId }, orderBy: { createdAt: 'asc' } }),
        db.townGitAuth.findMany({ where: { townId }, orderBy: { host: 'asc' } }),
        db.rig.findMany({ where: { townId }, orderBy: { name: 'asc' } }),
      ]);
      return {
        ...presentTown(town),
        integrations: integrations.map(presentIntegration),
        connect_integration_url: integrations.length === 0 ? `/integrations?owner_id=${town.ownerId}` : null,
        git_auth: gitAuth.map((g) => ({
          host: g.host,
          username: g.username,
          fingerprint: g.fingerprint,
          updated_at: g.updatedAt.toISOString(),
        })),
        rigs: rigs.map((r) => ({
          id: r.id,
          name: r.name,
          git_url: r.gitUrl,
          platform_integration_id: r.platformIntegrationId,
          access: r.access,
        })),
      };
    },

    /** Replaces the town's tokens (PUT semantics), then tells running dispatches that use them. */
    async putGitAuth(townId: string, body: z.infer<typeof putGitAuthBody>) {
      await getTown(townId);
      const seen = new Set<string>();
      body.tokens.forEach((t, i) => {
        if (seen.has(t.host)) throw badRequest(`tokens.${i}.host`, `tokens.${i}.host: ${t.host} is listed twice`);
        seen.add(t.host);
      });
      const data = body.tokens.map((t) => ({
        townId,
        host: t.host,
        username: t.username ?? null,
        tokenEnc: deps.secrets.encrypt(t.token, townTokenContext(townId, t.host)),
        fingerprint: fingerprint(t.token),
      }));
      await db.$transaction(async (tx) => {
        // Concurrent PUTs take turns on the town's row: each replaces the whole set (the last one
        // wins), instead of two deletes seeing nothing and the inserts colliding (500) or mixing.
        const locked = await tx.$queryRaw<unknown[]>`SELECT 1 FROM towns WHERE id = ${townId}::uuid FOR UPDATE`;
        if (locked.length === 0) throw notFound('town', 'town_id');
        await tx.townGitAuth.deleteMany({ where: { townId } });
        await tx.townGitAuth.createMany({ data });
      });
      await deps.notifier.townChanged(townId, 'town git-auth changed');
    },
  };
}

export type TownService = ReturnType<typeof createTownService>;
