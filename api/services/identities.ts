// The GitHub and GitLab accounts owners sign in with. An account belongs to one owner, created on
// its first sign-in; a signed-in owner who signs in with another account links it to themself. A
// GitHub account keeps its user-to-server pair (encrypted) for later installation checks, refreshed
// under a row lock because GitHub's refresh tokens work once.
import type { Core } from '../../lib/core';
import { isUniqueViolation } from '../../lib/db';
import type { GithubUserTokens } from '../../lib/providers/types';
import { identityTokenContext } from '../../lib/secret-contexts';
import type { OwnerIdentity } from '../../prisma/generated/client';
import { AppError } from '../errors';

type Deps = Pick<Core, 'db' | 'secrets' | 'githubUser'>;

/** A refresh this close to expiry is due: the token must outlive the calls it is fetched for. */
const REFRESH_MARGIN_MS = 60_000;
// The refresh runs under the row lock: longer than the call may take (PROVIDER_TIMEOUT_SECONDS, 10 s by default).
const USER_TOKEN_REFRESH_TX = { maxWait: 30_000, timeout: 30_000 };

export interface SignedInAccount {
  provider: 'github' | 'gitlab';
  /** GitHub web origin or GitLab base URL. */
  origin: string;
  id: number;
  login: string;
  name: string | null;
  avatarUrl: string | null;
  /** GitHub's user-to-server pair, kept for installation checks. */
  tokens?: GithubUserTokens;
}

/** The account is some other owner's: it signs nobody in and links to nobody else. */
export const linkedElsewhere = () =>
  new AppError(
    409,
    'account_linked_elsewhere',
    'This account is already linked to another owner of this service. Sign out and sign in with it to use that owner, or use another account.',
  );

export function createIdentityService(deps: Deps) {
  const { db, secrets } = deps;

  function tokenData(id: string, tokens: GithubUserTokens | undefined) {
    if (!tokens) return {};
    return {
      userTokenEnc: secrets.encrypt(tokens.accessToken, identityTokenContext(id, 'access')),
      userTokenExpiresAt: tokens.expiresAt,
      refreshTokenEnc: tokens.refreshToken ? secrets.encrypt(tokens.refreshToken, identityTokenContext(id, 'refresh')) : null,
      refreshTokenExpiresAt: tokens.refreshTokenExpiresAt,
    };
  }

  async function find(account: Pick<SignedInAccount, 'provider' | 'origin' | 'id'>) {
    return db.ownerIdentity.findUnique({
      where: { provider_origin_providerUserId: { provider: account.provider, origin: account.origin, providerUserId: BigInt(account.id) } },
    });
  }

  async function linkNew(ownerId: string | null, account: SignedInAccount): Promise<string> {
    const profile = { displayName: account.name ?? account.login, avatarUrl: account.avatarUrl };
    return db.$transaction(async (tx) => {
      const owner = ownerId
        ? await tx.owner.findUniqueOrThrow({ where: { id: ownerId }, select: { id: true, displayName: true } })
        : await tx.owner.create({ data: profile, select: { id: true, displayName: true } });
      if (ownerId && owner.displayName === null) await tx.owner.update({ where: { id: ownerId }, data: profile });
      const identity = await tx.ownerIdentity.create({
        data: {
          ownerId: owner.id,
          provider: account.provider,
          origin: account.origin,
          providerUserId: BigInt(account.id),
          login: account.login,
        },
      });
      if (account.tokens) await tx.ownerIdentity.update({ where: { id: identity.id }, data: tokenData(identity.id, account.tokens) });
      return owner.id;
    });
  }

  /** The owner's GitHub account on this GitHub, if linked. */
  async function githubOf(ownerId: string): Promise<OwnerIdentity | null> {
    return db.ownerIdentity.findFirst({
      where: { ownerId, provider: 'github', origin: deps.githubUser.webUrl },
      orderBy: { createdAt: 'asc' },
    });
  }

  return {
    githubOf,

    /**
     * The owner an account signs in as: its linked owner, else `current` (a signed-in owner linking
     * it), else a new owner. Refused when the account is another owner's than `current`.
     */
    async signIn(account: SignedInAccount, current: string | null): Promise<string> {
      const known = await find(account);
      if (known) {
        if (current !== null && known.ownerId !== current) throw linkedElsewhere();
        await db.ownerIdentity.update({ where: { id: known.id }, data: { login: account.login, ...tokenData(known.id, account.tokens) } });
        return known.ownerId;
      }
      try {
        return await linkNew(current, account);
      } catch (err) {
        // Two first sign-ins of one account at once: the other one created it.
        if (!isUniqueViolation(err)) throw err;
        const raced = await find(account);
        if (!raced || (current !== null && raced.ownerId !== current)) throw linkedElsewhere();
        return raced.ownerId;
      }
    },

    /** A live user token of the owner's GitHub account (refreshed first when due), or null without one. */
    async githubUserToken(ownerId: string, now = Date.now()): Promise<string | null> {
      const identity = await githubOf(ownerId);
      if (!identity?.userTokenEnc) return null;
      const fresh = (row: OwnerIdentity) => !row.userTokenExpiresAt || row.userTokenExpiresAt.getTime() - now > REFRESH_MARGIN_MS;
      if (fresh(identity)) return secrets.decrypt(identity.userTokenEnc, identityTokenContext(identity.id, 'access'));
      return db.$transaction(async (tx) => {
        await tx.$queryRaw`SELECT id FROM owner_identities WHERE id = ${identity.id}::uuid FOR UPDATE`;
        const row = await tx.ownerIdentity.findUniqueOrThrow({ where: { id: identity.id } });
        if (fresh(row)) return secrets.decrypt(row.userTokenEnc!, identityTokenContext(row.id, 'access'));
        const refreshDead = !row.refreshTokenEnc || (row.refreshTokenExpiresAt !== null && row.refreshTokenExpiresAt.getTime() <= now);
        if (refreshDead) return null;
        const tokens = await deps.githubUser
          .refresh('standard', secrets.decrypt(row.refreshTokenEnc!, identityTokenContext(row.id, 'refresh')))
          .catch((err) => {
            // A dead refresh token means signing in with GitHub again; other failures are the caller's to show.
            if ((err as { code?: string }).code === 'reconnect_required') return null;
            throw err;
          });
        // Saved in the same transaction as the lock: the old refresh token is already spent.
        await tx.ownerIdentity.update({
          where: { id: row.id },
          data: tokens ? tokenData(row.id, tokens) : { userTokenEnc: null, refreshTokenEnc: null },
        });
        return tokens?.accessToken ?? null;
        // Prisma's default of 5 s closed the transaction under a slow GitHub, and the pair it
        // answered (the old refresh token already spent) was lost.
      }, USER_TOKEN_REFRESH_TX);
    },
  };
}

export type IdentityService = ReturnType<typeof createIdentityService>;
