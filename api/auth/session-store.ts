// Server-side sessions: the cookie holds a random value, Postgres its SHA-256, so a logout, "sign
// out everywhere" or a rotated ADMIN_API_TOKEN ends a session on every API instance at once.
import { createHmac } from 'node:crypto';
import type { Config } from '../../lib/config';
import type { Db } from '../../lib/db';
import { safeEqual, sha256Hex } from '../../lib/secrets';
import { newSessionValue, SESSION_TTL_MS } from './session-cookie';

/** last_seen_at is written at most this often per session. */
const TOUCH_EVERY_MS = 60_000;

export interface SessionRecord {
  id: string;
  /** null: an admin session. */
  ownerId: string | null;
  createdAt: Date;
  lastSeenAt: Date;
  expiresAt: Date;
  userAgent: string | null;
}

/**
 * A keyed fingerprint of the admin token (HMAC under a key derived from SECRETS_KEY), stored on
 * admin sessions: a database dump does not give away the token, and a new token ends them.
 */
export function adminFingerprint(config: Config): string {
  const key = createHmac('sha256', config.secretsKeys[0]).update('admin-session:v1').digest();
  return createHmac('sha256', key).update(config.adminApiToken).digest('hex');
}

const present = (row: SessionRecord): SessionRecord => ({
  id: row.id,
  ownerId: row.ownerId,
  createdAt: row.createdAt,
  lastSeenAt: row.lastSeenAt,
  expiresAt: row.expiresAt,
  userAgent: row.userAgent,
});

export function createSessionStore(deps: { db: Db; config: Config }) {
  const { db, config } = deps;

  return {
    /** Starts a session for an owner (or admin, `ownerId` null); returns the cookie value, shown only here. */
    async create(args: { ownerId: string | null; userAgent?: string }, now = new Date()): Promise<{ value: string; id: string }> {
      // Expired rows go when new ones come: the index on expires_at keeps it cheap.
      await db.session.deleteMany({ where: { expiresAt: { lt: now } } });
      const value = newSessionValue();
      const row = await db.session.create({
        data: {
          tokenHash: sha256Hex(value),
          ownerId: args.ownerId,
          adminFingerprint: args.ownerId === null ? adminFingerprint(config) : null,
          userAgent: args.userAgent?.slice(0, 500) ?? null,
          createdAt: now,
          lastSeenAt: now,
          expiresAt: new Date(now.getTime() + SESSION_TTL_MS),
        },
      });
      return { value, id: row.id };
    },

    /** The live session a cookie value names, or null (unknown, expired, or an admin session of an older admin token). */
    async find(value: string | undefined, now = new Date()): Promise<SessionRecord | null> {
      if (!value || value.length > 200) return null;
      const row = await db.session.findUnique({ where: { tokenHash: sha256Hex(value) } });
      if (!row || row.expiresAt <= now) return null;
      if (row.ownerId === null && !safeEqual(row.adminFingerprint ?? '', adminFingerprint(config))) return null;
      if (now.getTime() - row.lastSeenAt.getTime() >= TOUCH_EVERY_MS) {
        await db.session.update({ where: { id: row.id }, data: { lastSeenAt: now } }).catch(() => undefined);
        row.lastSeenAt = now;
      }
      return present(row);
    },

    /** Ends one session (logout). */
    async end(id: string): Promise<void> {
      await db.session.deleteMany({ where: { id } });
    },

    /** An owner's live sessions, newest first. */
    async listForOwner(ownerId: string, now = new Date()): Promise<SessionRecord[]> {
      const rows = await db.session.findMany({ where: { ownerId, expiresAt: { gt: now } }, orderBy: { createdAt: 'desc' } });
      return rows.map(present);
    },

    /** Ends one of an owner's sessions; false when the owner has no such session. */
    async endForOwner(ownerId: string, id: string): Promise<boolean> {
      return (await db.session.deleteMany({ where: { id, ownerId } })).count > 0;
    },

    /** "Sign out everywhere": ends every session of the owner; returns how many. */
    async endAllForOwner(ownerId: string): Promise<number> {
      return (await db.session.deleteMany({ where: { ownerId } })).count;
    },
  };
}

export type SessionStore = ReturnType<typeof createSessionStore>;
