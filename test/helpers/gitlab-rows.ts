// A GitLab integration row as the API stores one after registering a grant: the pair sealed for the
// row, the account it belongs to. Tests that reach the store below the API write it this way.
import { randomUUID } from 'node:crypto';
import type { Db } from '../../lib/db';
import type { SecretBox } from '../../lib/secrets';
import { gitlabTokenContext } from '../../lib/secret-contexts';

export async function storeGitlabIntegration(
  db: Db,
  secrets: SecretBox,
  opts: {
    baseUrl: string;
    user: { id: number; username: string };
    grant: { accessToken: string; refreshToken: string; expiresAt: Date };
    /** When the stored access token expires (default: as GitLab said). */
    expiresAt?: Date;
  },
): Promise<{ id: string; ownerId: string }> {
  const id = randomUUID();
  const { id: ownerId } = await db.owner.create({ data: { id: randomUUID() } });
  await db.platformIntegration.create({
    data: {
      id,
      ownerId,
      provider: 'gitlab',
      gitlabBaseUrl: opts.baseUrl,
      accountId: BigInt(opts.user.id),
      accountLogin: opts.user.username,
      accessTokenEnc: secrets.encrypt(opts.grant.accessToken, gitlabTokenContext(id, 'access')),
      refreshTokenEnc: secrets.encrypt(opts.grant.refreshToken, gitlabTokenContext(id, 'refresh')),
      accessTokenExpiresAt: opts.expiresAt ?? opts.grant.expiresAt,
    },
  });
  return { id, ownerId };
}
