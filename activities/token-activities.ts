// Activities of the git-token workflow. They are the only code that touches tokens: a token goes
// from the provider into Postgres (encrypted) and to the container, never into an activity result,
// so Temporal's history holds generations, expiries and fingerprints only.
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { DispatchNotifier } from '../lib/dispatch-notifier';
import { IntegrationUnavailableError } from '../lib/gitlab-grant';
import { DispatchEndedError, metaOf, type CurrentLease, type LeaseStore } from '../lib/lease-store';
import type { Logger } from '../lib/logger';
import type { Metrics } from '../lib/metrics';
import type { ContainerUrlPolicy } from '../lib/container-url-policy';
import { containerTokenContext } from '../lib/secret-contexts';
import { ProviderError, type GithubClient } from '../lib/providers/types';
import { revokeBestEffort, revokeHeldTokens } from '../lib/dispatch-revocation';
import { FailureType, isPermanentFailure } from '../workflows/failure-types';
import {
  ENDED_STATUSES,
  type FinishDispatchInput,
  type LeaseMeta,
  type MintLeaseInput,
  type PushLeaseInput,
  type PushLeaseResult,
} from '../workflows/git-token-types';
import { CredentialError, resolveCredential, type ResolverDeps, type ResolvedCredential } from './credential-resolver';
import { pushToContainer } from './container-push';
import { createMintSettler } from './unsettled-mints';

/** A lease that holds a token: what a push sends. */
type HeldLease = CurrentLease & { token: string };

export interface TokenActivityDeps extends Omit<ResolverDeps, 'github' | 'onIntegrationStatusChanged'> {
  github: Pick<GithubClient, 'mintInstallationToken' | 'verifyInstallationToken' | 'revokeInstallationToken' | 'getInstallation'>;
  leases: LeaseStore;
  notifier: Pick<DispatchNotifier, 'integrationChanged'>;
  metrics?: Metrics;
  /** Where unexpected failures are described for operators (Temporal sees only their class). */
  logger?: Pick<Logger, 'error' | 'warn' | 'info'>;
  /** Push request timeout; the workflow's retry policy bounds the total. */
  pushTimeoutMs?: number;
  /** Which container addresses a push may dial (checked on the address actually dialled). */
  containerUrlPolicy: ContainerUrlPolicy;
}

/** Maps any failure of a mint to the contract's typed code and whether retrying can help. */
export function classifyMintError(err: unknown): { code: string; message: string; permanent: boolean; retryAfterSeconds?: number } {
  if (err instanceof CredentialError) return { code: err.code, message: err.message, permanent: true };
  if (err instanceof IntegrationUnavailableError) return { code: err.code, message: err.message, permanent: true };
  if (err instanceof ProviderError) {
    // A GitLab token the provider rejects outright needs the user to reconnect.
    const code = err.code === 'invalid_credentials' ? FailureType.reconnectRequired : err.code;
    return { code, message: err.message, permanent: isPermanentFailure(code), retryAfterSeconds: err.retryAfterSeconds };
  }
  // Database hiccups, bugs: retry, and say only what kind of failure it was.
  return {
    code: FailureType.providerUnavailable,
    message: `internal error (${err instanceof Error ? err.name : 'unknown'})`,
    permanent: false,
  };
}

/**
 * Heartbeats every 3 s while a (remote) activity runs, so a dead worker is noticed in seconds. A
 * no-op for local activities (the workflow task covers them) and outside an activity.
 */
function heartbeatWhileRunning(): () => void {
  let ctx: Context | undefined;
  try {
    ctx = Context.current();
  } catch {
    return () => undefined;
  }
  if (ctx.info.isLocal) return () => undefined;
  const timer = setInterval(() => ctx!.heartbeat(), 3000);
  return () => clearInterval(timer);
}

export function createTokenActivities(deps: TokenActivityDeps) {
  const { leases, metrics } = deps;

  const onIntegrationStatusChanged = async (integrationId: string, status: string, askingDispatchId: string) => {
    await deps.notifier.integrationChanged(integrationId, `integration became ${status}`, askingDispatchId);
  };

  const unsettled = createMintSettler({
    holds: leases.holds,
    revoke: (dispatchId, token, expiresAt) =>
      revokeBestEffort(deps, { token, expiresAt, dispatchId, reason: 'minted by an attempt that failed' }),
    logger: deps.logger,
  });

  /**
   * Mints (or reuses) the dispatch's credential and, when asked, pushes a new one to the container
   * right away: one activity per refresh instead of two halves the work the Temporal server does
   * per cycle. A push that fails here is retried by the workflow's own push activity.
   */
  async function mintLease(input: MintLeaseInput): Promise<LeaseMeta> {
    const stopBeating = heartbeatWhileRunning();
    try {
      return await mintAndPush(input);
    } finally {
      stopBeating();
    }
  }

  async function mintAndPush(input: MintLeaseInput): Promise<LeaseMeta> {
    const { meta: lease, stored } = await mintOnly(input);
    if (!input.push || lease.reused || !stored) return lease;
    // The lease just written, pushed without reading it back.
    const pushed = await send(stored).catch(() => ({ outcome: 'failed' as const, detail: 'error' }));
    if (pushed.outcome === 'acknowledged') return { ...lease, pushed: 'acknowledged' };
    return pushed.outcome === 'gone' ? { ...lease, pushed: 'gone' } : lease;
  }

  /** Mints and stores; `stored` is the new lease as a push needs it (absent when nothing new was written). */
  async function mintOnly(input: MintLeaseInput): Promise<{ meta: LeaseMeta; stored?: HeldLease }> {
    const seen = await leases.read(input.dispatchId);
    if (seen && seen.token !== null && seen.mintKey === input.mintKey) {
      // A retry of a mint that already stored its lease.
      return { meta: { ...metaOf(seen.seen, false), retried: true } };
    }

    let credential: ResolvedCredential | undefined;
    try {
      if (!seen || seen.ended) throw new DispatchEndedError(input.dispatchId);
      credential = await resolveCredential({ ...deps, onIntegrationStatusChanged }, input.dispatchId, {
        minValiditySeconds: input.minValiditySeconds,
      });
      const written = await leases.write(input.dispatchId, credential, input.mintKey, seen.seen);
      // Tokens nobody will hold: a duplicate attempt's, or replaced ones after a switch of source.
      const { dispatchId } = input;
      for (const token of written.revokeNow)
        await revokeBestEffort(deps, { token, expiresAt: null, dispatchId, reason: 'replaced, held by nobody' });
      if (written.duplicate && credential.revocable) {
        const { token, expiresAt } = credential;
        await revokeBestEffort(deps, { token, expiresAt, dispatchId, reason: 'minted by a duplicate attempt' });
      }
      // The workflow shows how far the token reaches (never the token).
      const lease: LeaseMeta = { ...written.meta, scope: credential.scope, scopeReason: credential.scopeReason };
      metrics?.mints.inc({ provider: credential.provider, outcome: lease.reused ? 'reused' : 'minted', reason: input.reason });
      if (input.scheduledFor) {
        metrics?.refreshLateness.observe(
          { provider: credential.provider },
          Math.max(0, Date.now() - Date.parse(input.scheduledFor)) / 1000,
        );
      }
      if (lease.reused || written.duplicate) return { meta: lease };
      const { token, username, expiresAt, source } = credential;
      return {
        meta: lease,
        stored: {
          ...seen,
          token,
          username,
          expiresAt,
          source,
          generation: lease.generation,
          fingerprint: lease.fingerprint,
          mintKey: input.mintKey,
        },
      };
    } catch (err) {
      // A GitHub token minted but not stored would live on for an hour with nobody to revoke it,
      // unless the store did commit and only its answer was lost (then it is the lease).
      if (credential?.revocable) await unsettled.settle(input.dispatchId, credential.token, credential.expiresAt);
      if (err instanceof DispatchEndedError) {
        throw ApplicationFailure.create({ type: 'dispatch_ended', message: err.message, nonRetryable: true });
      }
      const failure = classifyMintError(err);
      if (failure.message.startsWith('internal error')) {
        deps.logger?.error(
          { err: { name: (err as Error)?.name, message: (err as Error)?.message }, dispatchId: input.dispatchId },
          'mint failed unexpectedly',
        );
      }
      const provider = credential?.provider ?? (await providerOf(input.dispatchId).catch(() => 'unknown'));
      metrics?.mints.inc({ provider, outcome: 'failed', reason: input.reason });
      metrics?.providerErrors.inc({ provider, code: failure.code });
      await recordMintFailure(input.dispatchId, failure).catch(() => undefined);
      // A permanent failure: what the dispatch held is for a source the rig no longer has (or that
      // no longer works). Revoked where GitHub allows and forgotten, so no pull hands it out.
      if (failure.permanent) await withdrawHeld(input.dispatchId, failure.code).catch(() => undefined);
      throw ApplicationFailure.create({
        type: failure.code,
        message: failure.message,
        nonRetryable: failure.permanent,
        nextRetryDelay: failure.retryAfterSeconds ? `${Math.min(failure.retryAfterSeconds, 60)} seconds` : undefined,
      });
    }
  }

  /**
   * Revokes (best effort) and forgets the tokens a dispatch holds; it keeps running without one.
   * One attempt per token: this runs inside the mint's local activity, whose time is bounded (two
   * tokens against a hanging GitHub cost two provider timeouts).
   */
  async function withdrawHeld(dispatchId: string, code: string): Promise<void> {
    await revokeHeldTokens(deps, dispatchId, `withdrawn: ${code}`, { attempts: 1 })();
    await leases.withdraw(dispatchId);
  }

  /** Where the dispatch's tokens come from, for labelling a mint that failed before it knew. */
  async function providerOf(dispatchId: string): Promise<string> {
    const d = await deps.db.agentDispatch.findUnique({
      where: { id: dispatchId },
      select: { rig: { select: { integration: { select: { provider: true } } } } },
    });
    return d?.rig.integration?.provider ?? 'town';
  }

  async function recordMintFailure(dispatchId: string, failure: { code: string; message: string; permanent: boolean }) {
    const d = await deps.db.agentDispatch.findUnique({
      where: { id: dispatchId },
      select: { generation: true, credentialSource: true, status: true },
    });
    if (!d || ENDED_STATUSES.includes(d.status)) return;
    // `degraded` means the container holds a token while the provider fails; before the first
    // token a passing failure leaves the dispatch `starting` and only records the error.
    const status = failure.permanent ? 'credential_error' : d.status === 'starting' ? 'starting' : 'degraded';
    await leases.recordFailure(dispatchId, status, failure.code, failure.message);
    await leases.recordEvent(dispatchId, 'refresh_failed', {
      source: d.credentialSource,
      generation: d.generation,
      detail: `${failure.code}: ${failure.message}`,
    });
  }

  /** One push of the current lease; `failed` means worth retrying. */
  async function pushOnce(dispatchId: string): Promise<PushLeaseResult | { outcome: 'failed'; detail: string }> {
    const lease = await leases.read(dispatchId);
    if (!lease || lease.ended) return { outcome: 'gone', generation: 0, expiresAt: null };
    if (lease.token === null) return { outcome: 'no_lease', generation: lease.generation, expiresAt: null };
    return send({ ...lease, token: lease.token });
  }

  /** Sends `lease` (which holds a token) to the dispatch's container and records the outcome. */
  async function send(lease: HeldLease): Promise<PushLeaseResult | { outcome: 'failed'; detail: string }> {
    const d = { id: lease.dispatchId, rigId: lease.rigId, containerUrl: lease.containerUrl, containerTokenEnc: lease.containerTokenEnc };
    const started = performance.now();
    const expiresAt = lease.expiresAt?.toISOString() ?? null;
    const event = { source: lease.source, generation: lease.generation, fingerprint: lease.fingerprint, expiresAt: lease.expiresAt };
    const result = await pushToContainer({
      containerUrl: d.containerUrl,
      containerToken: deps.secrets.decrypt(d.containerTokenEnc, containerTokenContext(d.id)),
      body: {
        rig_id: d.rigId,
        dispatch_id: d.id,
        token: lease.token,
        expires_at: expiresAt,
        username: lease.username,
        generation: lease.generation,
      },
      timeoutMs: deps.pushTimeoutMs ?? 5000,
      policy: deps.containerUrlPolicy,
    });
    metrics?.pushLatency.observe({ outcome: result.outcome }, (performance.now() - started) / 1000);
    if (result.outcome === 'acknowledged') {
      await leases.recordEvent(d.id, 'pushed', event);
      return { outcome: 'acknowledged', generation: lease.generation, expiresAt };
    }
    await leases.recordEvent(d.id, 'push_failed', { ...event, detail: result.detail });
    if (result.outcome === 'gone') return { outcome: 'gone', generation: lease.generation, expiresAt };
    return { outcome: 'failed', detail: result.detail };
  }

  async function pushLease(input: PushLeaseInput): Promise<PushLeaseResult> {
    const result = await pushOnce(input.dispatchId);
    if (result.outcome === 'failed') throw new Error(`push to container failed: ${result.detail}`); // retried by the workflow's policy
    return result;
  }

  /**
   * Ends a dispatch (leases.close: ended, revoked, forgotten, final status), revoking its GitHub
   * tokens (the current one and the one it replaced) as well as GitHub allows. The dispatch is
   * ended first (pulls answer 410); while GitHub is unavailable and a token still works, the
   * activity fails and is retried (until past the token's expiry: finishDeadlineMs), and only a
   * revoked or expired token is forgotten. GitLab tokens are the integration's shared grant and
   * town tokens are static: a stop only forgets its copy of them.
   */
  async function finishDispatch(input: FinishDispatchInput): Promise<void> {
    // The tokens are read inside close, after the dispatch is marked ended, so none is missed.
    await leases.close(input.dispatchId, input, revokeHeldTokens(deps, input.dispatchId, input.reason, { untilRevoked: true }));
  }

  return { mintLease, pushLease, finishDispatch };
}

export type TokenActivities = ReturnType<typeof createTokenActivities>;
