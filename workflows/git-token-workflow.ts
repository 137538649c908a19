// One long-lived workflow per agent dispatch: mint a token, push it to the container, sleep until
// just before expiry, refresh, push again; on stop revoke it. Tokens never enter this file: the
// activities store them encrypted and the workflow only sees generations and expiries.
import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  allHandlersFinished,
  condition,
  continueAsNew,
  defineQuery,
  defineSignal,
  defineUpdate,
  log,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { createTokenActivities } from '../activities/token-activities';
import { FailureType, isPermanentFailure } from './failure-types';
import type {
  CarriedState,
  DispatchStatus,
  DispatchView,
  GitTokenWorkflowInput,
  GitTokenWorkflowResult,
  LeaseMeta,
} from './git-token-types';
import { computeRefreshAt, transientBackoffMs } from './refresh-schedule';
import { CredentialSourceKey, DispatchStatusKey } from './search-attributes';

type Activities = ReturnType<typeof createTokenActivities>;

export const stopSignal = defineSignal<[{ reason?: string }?]>('stop');
/** The integration, rig connection or town git-auth changed (or a shared grant rotated): mint again. */
export const credentialsChangedSignal = defineSignal<[{ reason: string }]>('credentialsChanged');
export const statusQuery = defineQuery<DispatchView>('status');
/** Used by the pull route: returns once a lease newer than `staleGeneration` exists (or minting failed). */
export const refreshNowUpdate = defineUpdate<DispatchView, [{ staleGeneration: number }]>('refreshNow');

/** The workflow id of a dispatch. */
export function gitTokenWorkflowId(dispatchId: string): string {
  return `git-token-${dispatchId}`;
}

// Activity presets. Minting (which also pushes) is a local activity: it takes a second, and run
// inside the workflow task it saves the Temporal server an activity task and a workflow task per
// refresh, which is most of the server's work for a sleeping fleet. It retries quickly for blips
// (three attempts in ~3 s); longer outages are retried by the loop itself, so the dispatch shows
// `degraded` in the meantime. A worker that dies mid-mint loses its workflow task, and the next
// worker runs the mint again, which returns the lease the first attempt stored (mint key).
const mintActivities = proxyLocalActivities<Activities>({
  // Above the worst case inside: mint (10 s) + verification (~16 s) + a lease write waiting for a
  // pooled connection (20 s). A timeout here would mint a second token.
  startToCloseTimeout: '60 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '2 seconds', maximumAttempts: 3 },
});
const finishActivities = proxyActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  scheduleToCloseTimeout: '10 minutes',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds' },
});
/** Pushes retry until the container's token would expire: past that, the container is unreachable. */
function pushActivities(deadlineMs: number) {
  return proxyActivities<Activities>({
    startToCloseTimeout: '10 seconds',
    scheduleToCloseTimeout: Math.max(1000, deadlineMs),
    retry: { initialInterval: '500 milliseconds', backoffCoefficient: 2, maximumInterval: '15 seconds' },
  });
}

const DEFAULT_CYCLES_PER_RUN = 100;
const DEFAULT_RECHECK_SECONDS = 15 * 60;
const DEFAULT_STATIC_PUSH_DEADLINE_SECONDS = 10 * 60;

function initialState(): CarriedState {
  return {
    status: 'starting',
    credentialSource: 'none',
    generation: 0,
    tokenExpiresAt: null,
    refreshedAt: null,
    lastError: null,
    mintedAtMs: null,
    pushedGeneration: 0,
    pushedExpiresAt: null,
    transientFailures: 0,
    retryAtMs: null,
    mintSeq: 0,
  };
}

function failureCode(err: unknown): { code: string; message: string } {
  const cause = err instanceof ActivityFailure ? err.cause : err;
  if (cause instanceof ApplicationFailure) return { code: cause.type ?? FailureType.providerUnavailable, message: cause.message };
  return { code: FailureType.providerUnavailable, message: cause instanceof Error ? cause.message : String(cause) };
}

/** Keeps one dispatch's container supplied with a fresh git token until it stops. */
export async function gitTokenWorkflow(input: GitTokenWorkflowInput): Promise<GitTokenWorkflowResult> {
  const s: CarriedState = input.state ?? initialState();
  const marginMs = input.marginSeconds * 1000;
  const cyclesPerRun = input.cyclesPerRun ?? DEFAULT_CYCLES_PER_RUN;
  const recheckMs = (input.recheckSeconds ?? DEFAULT_RECHECK_SECONDS) * 1000;
  let stopReason: string | null = null;
  let changed = false;
  let cycles = 0;
  let refreshing: Promise<void> | undefined;
  let publishedStatus: string | undefined = input.state ? s.status : 'starting';
  let publishedSource: string | undefined = input.state ? s.credentialSource : undefined;

  const view = (): DispatchView => ({
    status: s.status,
    credentialSource: s.credentialSource,
    generation: s.generation,
    tokenExpiresAt: s.tokenExpiresAt,
    refreshedAt: s.refreshedAt,
    lastError: s.lastError,
  });

  // Search attributes change only with status or source, so history does not grow per refresh.
  const publish = () => {
    if (s.status === publishedStatus && s.credentialSource === publishedSource) return;
    upsertSearchAttributes([
      { key: DispatchStatusKey, value: s.status },
      { key: CredentialSourceKey, value: s.credentialSource },
    ]);
    publishedStatus = s.status;
    publishedSource = s.credentialSource;
  };

  const refreshAt = (): number | null => {
    if (s.tokenExpiresAt === null || s.mintedAtMs === null) return null;
    return computeRefreshAt({
      mintedAtMs: s.mintedAtMs,
      expiresAtMs: Date.parse(s.tokenExpiresAt),
      marginMs,
      jitterMaxMs: input.jitterMaxSeconds * 1000,
      seed: `${input.dispatchId}:${s.generation}`,
    });
  };

  const leaseValid = () => s.generation > 0 && (s.tokenExpiresAt === null || Date.parse(s.tokenExpiresAt) > Date.now());

  /** When the loop should next mint, or null when only a signal can make it mint again. */
  const nextMintAt = (): number | null => {
    if (changed) return Date.now();
    if (s.retryAtMs !== null) return s.retryAtMs;
    if (s.generation === 0) return Date.now();
    return refreshAt();
  };

  const applyLease = (lease: LeaseMeta) => {
    s.generation = lease.generation;
    s.tokenExpiresAt = lease.expiresAt;
    s.credentialSource = lease.source;
    s.refreshedAt = new Date().toISOString();
    if (!lease.reused) s.mintedAtMs = Date.now();
    s.status = 'active';
    s.lastError = null;
    s.transientFailures = 0;
    s.retryAtMs = null;
  };

  const applyFailure = (err: unknown) => {
    const { code, message } = failureCode(err);
    if (code === 'dispatch_ended') {
      stopReason ??= 'dispatch ended';
      return;
    }
    s.lastError = { code, message, at: new Date().toISOString() };
    if (isPermanentFailure(code)) {
      s.status = 'credential_error';
      s.transientFailures = 0;
      s.retryAtMs = Date.now() + recheckMs; // safety net; a credentialsChanged signal comes sooner
    } else {
      s.status = 'degraded';
      s.transientFailures += 1;
      s.retryAtMs = Date.now() + transientBackoffMs(s.transientFailures, marginMs);
    }
    log.warn('mint failed', { dispatchId: input.dispatchId, code, status: s.status });
  };

  const mint = async (reason: string): Promise<void> => {
    const scheduled = reason === 'scheduled' ? refreshAt() : null;
    const lead = scheduled !== null && s.tokenExpiresAt !== null ? (Date.parse(s.tokenExpiresAt) - scheduled) / 1000 : undefined;
    changed = false;
    s.mintSeq += 1;
    try {
      const lease = await mintActivities.mintLease({
        dispatchId: input.dispatchId,
        mintKey: `${workflowInfo().runId}:${s.mintSeq}`,
        reason,
        scheduledFor: scheduled === null ? null : new Date(scheduled).toISOString(),
        push: true,
        ...(lead !== undefined ? { minValiditySeconds: Math.ceil(lead) + 1 } : {}),
      });
      applyLease(lease);
      if (lease.pushed === 'acknowledged') {
        s.pushedGeneration = Math.max(s.pushedGeneration, lease.generation);
        s.pushedExpiresAt = lease.expiresAt;
      } else if (lease.pushed === 'gone') {
        stopReason ??= 'container gone';
      }
      // A scheduled refresh that got the same token back must not spin on a refresh time that
      // has already passed: look again shortly.
      const next = refreshAt();
      if (lease.reused && next !== null && next <= Date.now()) s.retryAtMs = Date.now() + transientBackoffMs(1, marginMs);
    } catch (err) {
      applyFailure(err);
    }
    publish();
  };

  /** Single flight: a pull arriving while the loop refreshes waits for that refresh. */
  const refreshOnce = (reason: string): Promise<void> => {
    refreshing ??= mint(reason).finally(() => {
      refreshing = undefined;
    });
    return refreshing;
  };

  setHandler(stopSignal, (arg) => {
    stopReason ??= arg?.reason ?? 'stop requested';
  });
  setHandler(credentialsChangedSignal, ({ reason }) => {
    log.info('credentials changed', { dispatchId: input.dispatchId, reason });
    changed = true;
  });
  setHandler(statusQuery, view);
  setHandler(
    refreshNowUpdate,
    async ({ staleGeneration }) => {
      if (s.generation > staleGeneration) return view();
      // While backing off (provider failing) or waiting for a person, pulls must not hammer the provider.
      if (!changed && s.retryAtMs !== null && s.retryAtMs > Date.now()) return view();
      await refreshOnce('pull');
      return view();
    },
    {
      validator: (_arg) => {
        if (stopReason !== null)
          throw ApplicationFailure.create({ type: 'dispatch_ended', message: 'dispatch has ended', nonRetryable: true });
      },
    },
  );

  publish();
  for (;;) {
    if (stopReason !== null) break;
    const mintAt = nextMintAt();
    if (mintAt !== null && mintAt <= Date.now()) {
      const reason = changed ? 'changed' : s.generation === 0 ? 'initial' : s.retryAtMs !== null ? 'retry' : 'scheduled';
      await refreshOnce(reason);
      cycles += 1;
      continue;
    }
    if (s.pushedGeneration < s.generation) {
      const ended = await pushCurrent();
      if (ended) {
        stopReason = ended;
        break;
      }
      continue;
    }
    if (cycles >= cyclesPerRun || workflowInfo().continueAsNewSuggested) {
      await condition(allHandlersFinished);
      // A signal or a pull's mint may have arrived while handlers finished: handle it in this run.
      if (stopReason === null && !changed && s.pushedGeneration >= s.generation) {
        return continueAsNew<typeof gitTokenWorkflow>({ ...input, state: { ...s } });
      }
      continue;
    }
    const waitMs = mintAt === null ? undefined : Math.max(1, mintAt - Date.now());
    const seenGeneration = s.generation;
    const woke = () => stopReason !== null || changed || s.generation !== seenGeneration;
    if (waitMs === undefined) await condition(woke);
    else await condition(woke, waitMs);
  }

  // Stop: let a pull's refresh finish, then revoke what this dispatch holds and end.
  await condition(allHandlersFinished);
  const finalStatus: DispatchStatus = stopReason === 'container_unreachable' ? 'container_unreachable' : 'stopped';
  try {
    await finishActivities.finishDispatch({ dispatchId: input.dispatchId, status: finalStatus, reason: stopReason ?? 'stopped' });
  } catch (err) {
    // Ten minutes of retries could not reach Postgres: end anyway, the reason is in the history.
    log.error('could not record the end of the dispatch', { dispatchId: input.dispatchId, error: failureCode(err).message });
  }
  s.status = finalStatus;
  publish();
  return { status: s.status, generation: s.generation };

  /**
   * Pushes the current lease; returns a stop reason when the container is gone or unreachable.
   * Retries run until the token the container holds would expire, but a stop, a credential change
   * or a newer lease interrupts them at once.
   */
  async function pushCurrent(): Promise<string | null> {
    const generation = s.generation;
    const containerExpiry = s.pushedGeneration > 0 ? s.pushedExpiresAt : s.tokenExpiresAt;
    const isStatic = s.tokenExpiresAt === null && (s.pushedGeneration === 0 || s.pushedExpiresAt === null);
    const deadlineMs = isStatic
      ? (input.staticPushDeadlineSeconds ?? DEFAULT_STATIC_PUSH_DEADLINE_SECONDS) * 1000
      : Date.parse(containerExpiry ?? s.tokenExpiresAt ?? new Date().toISOString()) - Date.now();
    const pushScope = new CancellationScope();
    const waitScope = new CancellationScope();
    const pushing = pushScope.run(() => pushActivities(deadlineMs).pushLease({ dispatchId: input.dispatchId }));
    const interrupted = waitScope.run(() => condition(() => stopReason !== null || changed || s.generation > generation));
    type Outcome = { kind: 'done'; result: Awaited<typeof pushing> } | { kind: 'failed'; err: unknown } | { kind: 'interrupted' };
    const outcome: Outcome = await Promise.race([
      pushing.then(
        (result): Outcome => ({ kind: 'done', result }),
        (err): Outcome => ({ kind: 'failed', err }),
      ),
      interrupted.then((): Outcome => ({ kind: 'interrupted' })),
    ]);
    if (outcome.kind === 'interrupted') {
      pushScope.cancel();
      await pushing.catch(() => undefined);
      return null; // the loop stops, mints or pushes the newer lease
    }
    waitScope.cancel();
    await interrupted.catch(() => undefined);
    if (outcome.kind === 'done') {
      if (outcome.result.outcome === 'gone') return 'container gone';
      // Nothing to push (no lease yet, or it was wiped): do not retry in a loop.
      s.pushedGeneration = outcome.result.outcome === 'no_lease' ? s.generation : Math.max(s.pushedGeneration, outcome.result.generation);
      if (outcome.result.outcome === 'acknowledged') s.pushedExpiresAt = outcome.result.expiresAt;
      return null;
    }
    // Retries ran out: the container could not be reached for as long as its token lived.
    if (s.generation > generation && leaseValid()) return null;
    log.warn('container unreachable', { dispatchId: input.dispatchId, error: failureCode(outcome.err).message });
    return 'container_unreachable';
  }
}
