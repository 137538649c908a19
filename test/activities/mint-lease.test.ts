// mintLease (and the stop that ends a dispatch) run as the worker runs them, inside the SDK's
// MockActivityEnvironment: heartbeats of a remote mint, and how each kind of failure reaches the
// workflow (type, retryable or not, when to retry) and the dispatch's status.
import { ApplicationFailure } from '@temporalio/common';
import {
  dispatchState,
  githubRig,
  gitlabRig,
  manualRig,
  mintInput,
  newDispatch,
  runActivity,
  startActivityWorld,
  type ActivityWorld,
} from './activity-world';

let w: ActivityWorld;
beforeAll(async () => {
  w = await startActivityWorld();
});
afterAll(() => w?.close());

const accessTokens = (_method: string, path: string) => path.endsWith('/access_tokens');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs a mint that must fail and returns what the workflow would receive. */
async function failedMint(dispatchId: string): Promise<ApplicationFailure> {
  const err: unknown = await runActivity(w.env(), w.activities.mintLease, mintInput(dispatchId)).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ApplicationFailure);
  return err as ApplicationFailure;
}

describe('heartbeats', () => {
  it('a remote mint heartbeats every 3 s while it runs (here GitHub answers after 7.5 s), and not after', async () => {
    const { rigId } = await githubRig(w);
    const { dispatchId } = await newDispatch(w, rigId);
    w.github.gh.failNext(1, { status: 503, hangMs: 7500, match: accessTokens });
    const env = w.env({ isLocal: false });
    const started = Date.now();
    const beats: number[] = [];
    env.on('heartbeat', () => beats.push(Date.now() - started));

    await expect(runActivity(env, w.activities.mintLease, mintInput(dispatchId))).rejects.toMatchObject({ type: 'provider_unavailable' });
    expect(beats).toHaveLength(2);
    expect(beats[0]).toBeGreaterThanOrEqual(2900);
    expect(beats[1] - beats[0]).toBeGreaterThanOrEqual(2900);
    await sleep(3500);
    expect(beats).toHaveLength(2); // the timer stopped with the activity
  });

  it('a local mint does not heartbeat: the workflow task it runs in covers it', async () => {
    const { rigId } = await githubRig(w);
    const { dispatchId } = await newDispatch(w, rigId);
    w.github.gh.failNext(1, { status: 503, hangMs: 4000, match: accessTokens });
    const env = w.env({ isLocal: true });
    let beats = 0;
    env.on('heartbeat', () => beats++);

    await expect(runActivity(env, w.activities.mintLease, mintInput(dispatchId))).rejects.toMatchObject({ type: 'provider_unavailable' });
    expect(beats).toBe(0);
  });
});

describe('failures', () => {
  it.each([
    [
      'installation_suspended',
      'the GitHub installation is suspended',
      async () => {
        const rig = await githubRig(w);
        w.github.gh.suspend(rig.installationId);
        return { ...rig, integrationStatus: 'suspended' };
      },
    ],
    [
      'reconnect_required',
      'the GitLab grant was revoked',
      async () => {
        const rig = await gitlabRig(w);
        w.gitlab.revokeGrant(rig.userId);
        return { ...rig, integrationStatus: 'reconnect_required' };
      },
    ],
    ['no_credentials', 'a manual rig has no town token', async () => ({ ...(await manualRig(w)), integrationStatus: undefined })],
  ])('%s (%s) fails for good: non-retryable, typed, and the dispatch shows credential_error', async (type, _why, setup) => {
    const rig = await setup();
    const { dispatchId } = await newDispatch(w, rig.rigId);

    const failure = await failedMint(dispatchId);
    expect(failure).toMatchObject({ type, nonRetryable: true });
    expect(failure.nextRetryDelay).toBeUndefined();
    expect(await dispatchState(w, dispatchId)).toMatchObject({
      status: 'credential_error',
      lastErrorCode: type,
      generation: 0,
      events: ['refresh_failed'],
    });
    if ('integrationId' in rig) {
      const integration = await w.core.db.platformIntegration.findUniqueOrThrow({ where: { id: rig.integrationId } });
      expect(integration.status).toBe(rig.integrationStatus);
    }
  });

  it.each([
    [503, '7', '7 seconds'],
    [429, '120', '60 seconds'],
  ])(
    'GitHub %i with Retry-After %s is retryable after %s; the dispatch keeps its token and shows degraded',
    async (status, after, delay) => {
      const { rigId } = await githubRig(w);
      const { dispatchId } = await newDispatch(w, rigId);
      const first = await runActivity(w.env(), w.activities.mintLease, mintInput(dispatchId));
      w.github.gh.failNext(1, { status, headers: { 'retry-after': after }, match: accessTokens });

      const failure = await failedMint(dispatchId);
      expect(failure).toMatchObject({ type: 'provider_unavailable', nonRetryable: false, nextRetryDelay: delay });
      expect(await dispatchState(w, dispatchId)).toMatchObject({
        status: 'degraded',
        lastErrorCode: 'provider_unavailable',
        generation: first.generation,
        events: ['minted', 'refresh_failed'],
      });
    },
  );

  it('an unexpected error is retryable and says only its class; the detail goes to the operators log', async () => {
    const { townId: otherTown } = await manualRig(w);
    // The town's token sealed for another town: it fails authentication instead of decrypting.
    const { rigId } = await manualRig(w, { townToken: 'glpat-static-town-token-0123456789abcdef', sealedFor: otherTown });
    const { dispatchId } = await newDispatch(w, rigId);

    const failure = await failedMint(dispatchId);
    expect(failure).toMatchObject({ type: 'provider_unavailable', nonRetryable: false, message: 'internal error (SecretDecryptError)' });
    expect(failure.nextRetryDelay).toBeUndefined();
    const logged = w.logs.map((l) => JSON.parse(l) as { msg: string; dispatchId?: string; err?: { name: string; message: string } });
    expect(logged.find((l) => l.msg === 'mint failed unexpectedly' && l.dispatchId === dispatchId)?.err).toMatchObject({
      name: 'SecretDecryptError',
      message: expect.stringContaining('failed authentication') as string,
    });
    // Before its first token a passing failure leaves the dispatch starting.
    expect(await dispatchState(w, dispatchId)).toMatchObject({ status: 'starting', lastErrorCode: 'provider_unavailable' });
  });

  it('a token minted while Postgres refuses to note the integration active again is revoked, not left alive', async () => {
    const { rigId, integrationId } = await githubRig(w);
    // Stored as suspended, though GitHub has it active (a missed unsuspend webhook): a mint notes it active.
    await w.core.db.platformIntegration.update({ where: { id: integrationId }, data: { status: 'suspended' } });
    const { dispatchId } = await newDispatch(w, rigId);
    // Postgres refuses any change to this integration's row, as a failing write would.
    const refuse = `rc_test_refuse_${integrationId.replace(/-/g, '')}`;
    await w.core.db.$executeRawUnsafe(
      `CREATE FUNCTION ${refuse}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$`,
    );
    await w.core.db.$executeRawUnsafe(
      `CREATE TRIGGER ${refuse} BEFORE UPDATE ON platform_integrations FOR EACH ROW WHEN (OLD.id = '${integrationId}') EXECUTE FUNCTION ${refuse}()`,
    );
    try {
      const issued = new Set(w.github.gh.issuedTokens());
      expect(await failedMint(dispatchId)).toMatchObject({ type: 'provider_unavailable', nonRetryable: false });
      const minted = w.github.gh.issuedTokens().filter((t) => !issued.has(t));
      expect(minted).toHaveLength(1);
      expect(w.github.gh.isTokenRevoked(minted[0])).toBe(true);
    } finally {
      await w.core.db.$executeRawUnsafe(`DROP TRIGGER ${refuse} ON platform_integrations`);
      await w.core.db.$executeRawUnsafe(`DROP FUNCTION ${refuse}()`);
    }
    // Once the write goes through, the next mint notes the integration active and stores its token.
    expect(await runActivity(w.env(), w.activities.mintLease, mintInput(dispatchId))).toMatchObject({ generation: 1 });
    expect(await w.core.db.platformIntegration.findUniqueOrThrow({ where: { id: integrationId } })).toMatchObject({ status: 'active' });
  });

  it('a second attempt of a stored mint returns that lease marked retried, without minting (the workflow then mints again if a signal came)', async () => {
    const { rigId } = await githubRig(w);
    const { dispatchId } = await newDispatch(w, rigId);
    const input = mintInput(dispatchId);
    const first = await runActivity(w.env(), w.activities.mintLease, input);
    expect(first.retried).toBeUndefined();
    const mintsBefore = w.github.gh.stats.mints;
    const again = await runActivity(w.env(), w.activities.mintLease, input);
    expect(again).toMatchObject({ generation: first.generation, fingerprint: first.fingerprint, retried: true });
    expect(w.github.gh.stats.mints).toBe(mintsBefore);
    const fresh = await runActivity(w.env(), w.activities.mintLease, mintInput(dispatchId, { reason: 'credentials changed' }));
    expect(fresh.retried).toBeUndefined();
  });

  it('after finishDispatch the token is revoked, and a late mint fails for good (dispatch_ended) without minting', async () => {
    const { rigId } = await githubRig(w);
    const { dispatchId, container } = await newDispatch(w, rigId);
    await runActivity(w.env(), w.activities.mintLease, mintInput(dispatchId, { push: true }));
    const token = w.containers.latest(container)!.token;
    expect(w.github.gh.isTokenLive(token)).toBe(true);

    await runActivity(w.env(), w.activities.finishDispatch, { dispatchId, status: 'stopped', reason: 'stopped by test' });
    expect(w.github.gh.isTokenLive(token)).toBe(false);
    const mintsBefore = w.github.gh.stats.mints;
    expect(await failedMint(dispatchId)).toMatchObject({ type: 'dispatch_ended', nonRetryable: true });
    expect(w.github.gh.stats.mints).toBe(mintsBefore);
    expect(await dispatchState(w, dispatchId)).toMatchObject({ status: 'stopped', events: ['minted', 'pushed', 'revoked'] });
  });
});
