// GitHub tokens whose revocation GitHub failed outside a stop wait in Postgres (encrypted) and are
// retried by the workers' sweep: the real queue over a real Postgres and the fake GitHub, whose
// DELETE /installation/token fails on cue. Time passing is stood in for by moving a row's next
// attempt (or its expiry) into the past.
import { randomBytes, randomUUID } from 'node:crypto';
import { revokeBestEffort } from '../../lib/dispatch-revocation';
import { createRevocationQueue, RETRY_DELAYS_MS } from '../../lib/revocation-queue';
import { createSecretBox, sha256Hex } from '../../lib/secrets';
import { githubRig, mintInput, newDispatch, runActivity, startActivityWorld, type ActivityWorld } from '../activities/activity-world';
import { eventually } from '../helpers/harness';

let w: ActivityWorld;
let installationId: number;
let repoId: number;
beforeAll(async () => {
  w = await startActivityWorld();
  const rig = await githubRig(w);
  installationId = rig.installationId;
  repoId = rig.repo.id;
});
afterAll(async () => {
  await w?.close();
});

const REVOKE = { match: (m: string, path: string) => m === 'DELETE' && path === '/installation/token' };
const revokeRequests = () => w.github.gh.requests.filter((r) => REVOKE.match(r.method, r.path)).length;
const mint = () => w.core.github.mintInstallationToken('standard', installationId, [repoId]);
const row = async (token: string) =>
  (
    await w.core.db.$queryRaw<Array<{ id: string; token_enc: string; attempts: number; next_attempt_at: Date; last_error: string | null }>>`
      SELECT id::text, token_enc, attempts, next_attempt_at, last_error FROM pending_revocations WHERE token_sha256 = ${sha256Hex(token)}`
  )[0];
/** Time passes: the row's next attempt is due. */
const due = (token: string) => w.core.db.$executeRaw`
  UPDATE pending_revocations SET next_attempt_at = now() - interval '1 second' WHERE token_sha256 = ${sha256Hex(token)}`;
const queued = (token: string, expiresAt: Date | null = new Date(Date.now() + 3600_000)) =>
  w.core.revocations.enqueue([{ token, expiresAt, dispatchId: randomUUID(), reason: 'test', error: 'provider_unavailable' }]);

it('keeps a token GitHub failed to revoke, encrypted, retries it with backoff while GitHub fails, and revokes it once GitHub answers', async () => {
  const { token, expiresAt } = await mint();
  w.github.gh.failNext(3, { status: 502, ...REVOKE });
  const before = Date.now();
  const outcome = await revokeBestEffort(w.core, { token, expiresAt, dispatchId: randomUUID(), reason: 'withdrawn: test' });
  expect(outcome).toBe('failed (provider_unavailable)');
  expect(w.github.gh.isTokenLive(token)).toBe(true);

  const kept = await row(token);
  expect(kept).toMatchObject({ attempts: 0, last_error: 'provider_unavailable' });
  expect(kept.token_enc).not.toContain(token);
  expect(kept.token_enc.split(':')[1]).toBe(w.core.secrets.keyId);
  // Its first retry waits; a row not yet due is left alone.
  expect(kept.next_attempt_at.getTime()).toBeGreaterThanOrEqual(before + RETRY_DELAYS_MS[0] - 100);
  await w.core.db.$executeRaw`
    UPDATE pending_revocations SET next_attempt_at = now() + interval '1 hour' WHERE token_sha256 = ${sha256Hex(token)}`;
  const sent = revokeRequests();
  await w.core.revocations.sweep();
  expect(revokeRequests()).toBe(sent);

  await due(token);
  w.github.gh.failNext(1, { status: 503, ...REVOKE });
  const retried = Date.now();
  expect(await w.core.revocations.sweep()).toMatchObject({ retrying: 1, revoked: 0 });
  const again = await row(token);
  expect(again).toMatchObject({ attempts: 1, last_error: 'provider_unavailable' });
  // The wait doubles.
  expect(again.next_attempt_at.getTime()).toBeGreaterThanOrEqual(retried + RETRY_DELAYS_MS[1] - 100);
  expect(RETRY_DELAYS_MS[1]).toBe(2 * RETRY_DELAYS_MS[0]);
  expect(w.github.gh.isTokenLive(token)).toBe(true);

  await due(token);
  expect(await w.core.revocations.sweep()).toMatchObject({ revoked: 1, retrying: 0 });
  expect(w.github.gh.isTokenRevoked(token)).toBe(true);
  expect(await row(token)).toBeUndefined();
});

it('lets go of a token that has expired without asking GitHub, and of one GitHub says is already dead', async () => {
  const expired = (await mint()).token;
  await queued(expired);
  await w.core.db.$executeRaw`
    UPDATE pending_revocations SET next_attempt_at = now(), expires_at = now() - interval '2 minutes' WHERE token_sha256 = ${sha256Hex(expired)}`;
  const sent = revokeRequests();
  // (Another test file's worker may take it first: expired rows are any worker's to delete.)
  await w.core.revocations.sweep();
  await eventually(async () => (await row(expired)) === undefined, 10_000, 'the expired row gone');
  expect(revokeRequests()).toBe(sent);

  const dead = (await mint()).token;
  await w.core.github.revokeInstallationToken(dead);
  await queued(dead);
  await due(dead);
  expect(await w.core.revocations.sweep()).toMatchObject({ alreadyInvalid: 1 });
  expect(await row(dead)).toBeUndefined();

  // A token that had already expired is not kept at all.
  const old = (await mint()).token;
  await queued(old, new Date(Date.now() - 5 * 60_000));
  expect(await row(old)).toBeUndefined();
});

it('keeps one row per token, and a worker without the key a row is sealed under leaves it to the ones with it', async () => {
  const { token } = await mint();
  await queued(token);
  await queued(token);
  const [{ n }] = await w.core.db.$queryRaw<Array<{ n: number }>>`
    SELECT count(*)::int AS n FROM pending_revocations WHERE token_sha256 = ${sha256Hex(token)}`;
  expect(n).toBe(1);
  await due(token);

  const otherDeploy = createRevocationQueue({ db: w.core.db, secrets: createSecretBox([randomBytes(32)]), github: w.core.github });
  await otherDeploy.sweep();
  expect(await row(token)).toMatchObject({ attempts: 0 });
  expect(w.github.gh.isTokenLive(token)).toBe(true);

  expect(await w.core.revocations.sweep()).toMatchObject({ revoked: 1 });
  expect(w.github.gh.isTokenRevoked(token)).toBe(true);

  // Once its token has expired, though, any worker deletes a row it cannot open.
  const theirs = (await mint()).token;
  await otherDeploy.enqueue([
    { token: theirs, expiresAt: new Date(), dispatchId: randomUUID(), reason: 'test', error: 'provider_unavailable' },
  ]);
  await w.core.db.$executeRaw`
    UPDATE pending_revocations SET next_attempt_at = now(), expires_at = now() - interval '2 minutes' WHERE token_sha256 = ${sha256Hex(theirs)}`;
  await w.core.revocations.sweep();
  await eventually(async () => (await row(theirs)) === undefined, 10_000, 'their expired row gone');
});

it('two workers sweeping at once try each token once', async () => {
  const tokens = await Promise.all(Array.from({ length: 6 }, async () => (await mint()).token));
  for (const t of tokens) {
    await queued(t);
    await due(t);
  }
  const sent = revokeRequests();
  const [a, b] = await Promise.all([w.core.revocations.sweep(), w.core.revocations.sweep()]);
  expect(a.revoked + b.revoked).toBe(6);
  expect(revokeRequests() - sent).toBe(6);
  for (const t of tokens) expect(w.github.gh.isTokenRevoked(t)).toBe(true);
});

it('gives up a token whose installation GitHub no longer knows, and retries one it refuses for any other reason', async () => {
  const { token } = await mint();
  await queued(token);
  await due(token);
  w.github.gh.failNext(1, { status: 403, body: { message: 'This installation has been suspended' }, ...REVOKE });
  expect(await w.core.revocations.sweep()).toMatchObject({ retrying: 1 });
  expect(await row(token)).toMatchObject({ attempts: 1, last_error: 'installation_suspended' });

  await due(token);
  w.github.gh.failNext(1, { status: 404, body: { message: 'Not Found' }, ...REVOKE });
  expect(await w.core.revocations.sweep()).toMatchObject({ dropped: 1 });
  expect(await row(token)).toBeUndefined();
  expect(w.logs.some((l) => l.includes('GitHub no longer knows the installation; given up'))).toBe(true);
});

it('queues a new token that failed its check call when GitHub fails its revocation too', async () => {
  const rig = await githubRig(w);
  const { dispatchId } = await newDispatch(w, rig.rigId);
  const issued = new Set(w.github.gh.issuedTokens());
  // GitHub fails everything a fresh token does: its check call (past the replication retries) and its revocation.
  w.github.gh.failNext(50, { status: 502, match: (m, path) => m === 'GET' && path.startsWith('/installation/repositories') });
  w.github.gh.failNext(1, { status: 502, ...REVOKE });
  await expect(runActivity(w.env(), w.activities.mintLease, mintInput(dispatchId))).rejects.toMatchObject({ type: 'provider_unavailable' });
  w.github.gh.clearFailures();
  const minted = w.github.gh.issuedTokens().filter((t) => !issued.has(t));
  expect(minted).toHaveLength(1);
  expect(w.github.gh.isTokenLive(minted[0])).toBe(true);
  expect(await row(minted[0])).toMatchObject({ attempts: 0, last_error: 'provider_unavailable' });

  await due(minted[0]);
  expect(await w.core.revocations.sweep()).toMatchObject({ revoked: 1 });
  expect(w.github.gh.isTokenRevoked(minted[0])).toBe(true);
});
