// The token loop's state changes as pure functions: plain-JSON state in, new state or a decision
// out, the current (workflow) time passed in as `now`. The workflow issues the commands and logs;
// everything here can be tested without Temporal (test/workflows/git-token-state.test.ts).
import { ActivityFailure, ApplicationFailure } from '@temporalio/common';
import { FailureType, isPermanentFailure } from './failure-types';
import type {
  CarriedState,
  DispatchStatus,
  DispatchView,
  GitTokenWorkflowInput,
  LeaseMeta,
  MintLeaseInput,
  PushLeaseResult,
} from './git-token-types';
import { computeRefreshAt, transientBackoffMs } from './refresh-schedule';

export const DEFAULT_CYCLES_PER_RUN = 100;
export const DEFAULT_RECHECK_SECONDS = 15 * 60;
export const DEFAULT_STATIC_PUSH_DEADLINE_SECONDS = 10 * 60;

/** A new state, and why the dispatch must end when the change calls for that. */
export interface Step {
  state: CarriedState;
  stop: string | null;
}

/** The state of a dispatch that has no token yet. */
export function initialState(): CarriedState {
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

/** What the status query and the pull update answer. */
export function view(s: CarriedState): DispatchView {
  return {
    status: s.status,
    credentialSource: s.credentialSource,
    generation: s.generation,
    tokenExpiresAt: s.tokenExpiresAt,
    refreshedAt: s.refreshedAt,
    lastError: s.lastError,
    ...scopeOf(s),
  };
}

/** The scope fields when a lease has set them; left out otherwise, so views of older runs stay as they were. */
function scopeOf(s: Pick<DispatchView, 'credentialScope' | 'credentialScopeReason'>) {
  return s.credentialScope === undefined
    ? {}
    : { credentialScope: s.credentialScope, credentialScopeReason: s.credentialScopeReason ?? null };
}

/** A failure's code and message; anything but a typed ApplicationFailure counts as the provider failing. */
export function failureCode(err: unknown): { code: string; message: string } {
  const cause = err instanceof ActivityFailure ? err.cause : err;
  if (cause instanceof ApplicationFailure) return { code: cause.type ?? FailureType.providerUnavailable, message: cause.message };
  return { code: FailureType.providerUnavailable, message: cause instanceof Error ? cause.message : String(cause) };
}

/** When the current token is due for a refresh (jittered per dispatch and generation), or null for a static one. */
export function refreshAt(s: CarriedState, input: GitTokenWorkflowInput): number | null {
  if (s.tokenExpiresAt === null || s.mintedAtMs === null) return null;
  return computeRefreshAt({
    mintedAtMs: s.mintedAtMs,
    expiresAtMs: Date.parse(s.tokenExpiresAt),
    marginMs: input.marginSeconds * 1000,
    jitterMaxMs: input.jitterMaxSeconds * 1000,
    seed: `${input.dispatchId}:${s.generation}`,
  });
}

/** True when the dispatch holds a token that has not expired. */
export function leaseValid(s: CarriedState, now: number): boolean {
  return s.generation > 0 && (s.tokenExpiresAt === null || Date.parse(s.tokenExpiresAt) > now);
}

/** When the loop should next mint, or null when only a signal can make it mint again. */
export function nextMintAt(s: CarriedState, input: GitTokenWorkflowInput, changed: boolean, now: number): number | null {
  if (changed) return now;
  if (s.retryAtMs !== null) return s.retryAtMs;
  if (s.generation === 0) return now;
  return refreshAt(s, input);
}

/** Why the loop mints now, for logs and metrics. */
export function mintReason(s: CarriedState, changed: boolean): string {
  return changed ? 'changed' : s.generation === 0 ? 'initial' : s.retryAtMs !== null ? 'retry' : 'scheduled';
}

/** A pull mints unless a newer lease exists or the loop is backing off (pulls must not hammer a failing provider). */
export function pullNeedsMint(s: CarriedState, staleGeneration: number, changed: boolean, now: number): boolean {
  if (s.generation > staleGeneration) return false;
  return changed || s.retryAtMs === null || s.retryAtMs <= now;
}

/** The next mint's input (its idempotency key counts mints per run) and the state that counts it. */
export function mintRequest(
  s: CarriedState,
  input: GitTokenWorkflowInput,
  reason: string,
  runId: string,
): { state: CarriedState; request: MintLeaseInput } {
  const due = refreshAt(s, input);
  const scheduled = reason === 'scheduled' ? due : null;
  // A shared token must outlive the refresh's lead, or the refresh would get it back: the scheduled
  // one and the retries after it (past the refresh time too), which would otherwise get the token
  // back as reused and look again every second until the lead had run down to the margin.
  const refreshing = reason === 'scheduled' || reason === 'retry';
  const lead = refreshing && due !== null && s.tokenExpiresAt !== null ? (Date.parse(s.tokenExpiresAt) - due) / 1000 : undefined;
  const mintSeq = s.mintSeq + 1;
  return {
    state: { ...s, mintSeq },
    request: {
      dispatchId: input.dispatchId,
      mintKey: `${runId}:${mintSeq}`,
      reason,
      scheduledFor: scheduled === null ? null : new Date(scheduled).toISOString(),
      push: true,
      ...(lead !== undefined ? { minValiditySeconds: Math.ceil(lead) + 1 } : {}),
    },
  };
}

/** A lease was minted (or reused): the dispatch is active again. */
export function applyLease(s: CarriedState, lease: LeaseMeta, now: number): CarriedState {
  return {
    ...s,
    generation: lease.generation,
    tokenExpiresAt: lease.expiresAt,
    credentialSource: lease.source,
    ...scopeOf({
      credentialScope: lease.scope ?? s.credentialScope,
      credentialScopeReason: lease.scope ? lease.scopeReason : s.credentialScopeReason,
    }),
    refreshedAt: new Date(now).toISOString(),
    mintedAtMs: lease.reused ? s.mintedAtMs : now,
    status: 'active',
    lastError: null,
    transientFailures: 0,
    retryAtMs: null,
  };
}

/** After a mint: the lease applied, its push recorded, and a reused token never left on a passed refresh time. */
export function afterMint(s: CarriedState, lease: LeaseMeta, input: GitTokenWorkflowInput, now: number): Step {
  let state = applyLease(s, lease, now);
  let stop: string | null = null;
  if (lease.pushed === 'acknowledged') {
    state = { ...state, pushedGeneration: Math.max(state.pushedGeneration, lease.generation), pushedExpiresAt: lease.expiresAt };
  } else if (lease.pushed === 'gone') {
    stop = 'container gone';
  }
  // A scheduled refresh that got the same token back must not spin on a refresh time that has
  // already passed: look again shortly.
  const next = refreshAt(state, input);
  if (lease.reused && next !== null && next <= now) {
    state = { ...state, retryAtMs: now + transientBackoffMs(1, input.marginSeconds * 1000) };
  }
  return { state, stop };
}

/**
 * A mint failed: permanent failures wait for a person (with a slow recheck as a safety net; a
 * credentialsChanged signal comes sooner), transient ones back off; an ended dispatch stops.
 * `startingStays`: a passing failure before the first token leaves the run `starting`, as the
 * dispatch row says (`degraded` means the container holds a token while the provider fails); runs
 * recorded before that rule say `degraded` (the workflow passes false for them).
 */
export function applyFailure(s: CarriedState, err: unknown, input: GitTokenWorkflowInput, now: number, startingStays = true): Step {
  const { code, message } = failureCode(err);
  if (code === 'dispatch_ended') return { state: s, stop: 'dispatch ended' };
  const lastError = { code, message, at: new Date(now).toISOString() };
  if (isPermanentFailure(code)) {
    const recheckMs = (input.recheckSeconds ?? DEFAULT_RECHECK_SECONDS) * 1000;
    return { state: { ...s, lastError, status: 'credential_error', transientFailures: 0, retryAtMs: now + recheckMs }, stop: null };
  }
  const transientFailures = s.transientFailures + 1;
  const retryAtMs = now + transientBackoffMs(transientFailures, input.marginSeconds * 1000);
  const status = s.status === 'starting' && startingStays ? 'starting' : 'degraded';
  return { state: { ...s, lastError, status, transientFailures, retryAtMs }, stop: null };
}

/**
 * True when the loop should continue as a new run on the sleeping task queue before waiting until
 * `mintAt` (null: until a signal): the wait is long, and this run is not one that has just started
 * there with nothing done yet (it waits; the next run after its wake keeps the history to replay short).
 */
export function sleepsElsewhere(
  input: GitTokenWorkflowInput,
  mintAt: number | null,
  now: number,
  run: { taskQueue: string; cycles: number },
): boolean {
  if (!input.sleeping) return false;
  if (mintAt !== null && mintAt - now < input.sleeping.afterSeconds * 1000) return false;
  return run.taskQueue !== input.sleeping.taskQueue || run.cycles > 0;
}

/**
 * The task queue a run with `input.queues` continues onto before waiting until `mintAt` (null: until a
 * signal), or null to wait in this run. A long wait belongs on the main queue and a short one on the hot
 * queue. On the main queue, the run the dispatch started with waits where it minted its first token (no
 * continue-as-new at start), and a run that has refreshed starts a new run first, so that the history
 * replayed at its next wake stays one refresh long.
 */
export function queueBeforeWait(
  queues: NonNullable<GitTokenWorkflowInput['queues']>,
  mintAt: number | null,
  now: number,
  run: { cycles: number; continued: boolean },
): string | null {
  const long = mintAt === null || mintAt - now >= queues.afterSeconds * 1000;
  const target = long ? queues.main : queues.hot;
  if (queues.current !== target) return target;
  return long && run.cycles > (run.continued ? 0 : 1) ? target : null;
}

/** True when the container has not acknowledged the current lease. */
export function needsPush(s: CarriedState): boolean {
  return s.pushedGeneration < s.generation;
}

/**
 * How long a push may retry: until the token the container holds expires (the current one when it
 * holds none yet), and at least the refresh margin (or the pushed token's life, when shorter). A
 * refresh comes a margin before expiry, so the floor only matters when it came late: after an
 * outage on this side (the provider, the workers), the held token may have expired or nearly, which
 * says nothing about the container, and one failed attempt must not end a dispatch that can be
 * reached. A static token has no expiry, so it gets a fixed deadline.
 */
export function pushDeadlineMs(s: CarriedState, input: GitTokenWorkflowInput, now: number): number {
  const staticMs = (input.staticPushDeadlineSeconds ?? DEFAULT_STATIC_PUSH_DEADLINE_SECONDS) * 1000;
  const containerExpiry = s.pushedGeneration > 0 ? s.pushedExpiresAt : s.tokenExpiresAt;
  const isStatic = s.tokenExpiresAt === null && (s.pushedGeneration === 0 || s.pushedExpiresAt === null);
  if (isStatic) return staticMs;
  const heldMs = Date.parse(containerExpiry ?? s.tokenExpiresAt ?? new Date(now).toISOString()) - now;
  const pushedMs = s.tokenExpiresAt === null ? staticMs : Date.parse(s.tokenExpiresAt) - now;
  return Math.max(heldMs, Math.min(pushedMs, input.marginSeconds * 1000));
}

/** How long a stop retries when it cannot reach Postgres, at the least. */
export const MIN_FINISH_DEADLINE_MS = 10 * 60_000;
/** How long a stop holding a static token (no expiry) retries: a week of a Postgres outage. */
export const STATIC_FINISH_DEADLINE_MS = 7 * 24 * 3600_000;

/**
 * How long a stop retries revoking and recording the end (Postgres down): until the token the
 * dispatch holds has expired, with a minute to spare as the stop's revocation allows
 * (REVOKE_AFTER_EXPIRY_MS, lib/lease-store.ts), and at least ten minutes. Giving up earlier would
 * leave a live token nobody revokes, and the dispatch showing as running.
 */
export function finishDeadlineMs(s: CarriedState, now: number): number {
  // A static town token never expires: a stop that gave up would leave its dispatch running in
  // Postgres, and its pulls (never stale) answering 200 with the token for good.
  if (s.generation > 0 && s.tokenExpiresAt === null) return STATIC_FINISH_DEADLINE_MS;
  const heldMs = s.tokenExpiresAt === null ? 0 : Date.parse(s.tokenExpiresAt) - now + 60_000;
  return Math.max(MIN_FINISH_DEADLINE_MS, heldMs);
}

/** A push answered: the container holds that lease now, or it is gone. */
export function afterPush(s: CarriedState, result: PushLeaseResult): Step {
  if (result.outcome === 'gone') return { state: s, stop: 'container gone' };
  // Nothing to push (no lease yet, or it was wiped): do not retry in a loop.
  const pushedGeneration = result.outcome === 'no_lease' ? s.generation : Math.max(s.pushedGeneration, result.generation);
  const pushedExpiresAt = result.outcome === 'acknowledged' ? result.expiresAt : s.pushedExpiresAt;
  return { state: { ...s, pushedGeneration, pushedExpiresAt }, stop: null };
}

/**
 * A push of `generation` ran out of retries: the container could not be reached for as long as its
 * token lived, unless a newer lease arrived meanwhile (the loop pushes that one).
 */
export function afterPushFailure(s: CarriedState, generation: number, now: number): Step {
  return { state: s, stop: s.generation > generation && leaseValid(s, now) ? null : 'container_unreachable' };
}

/** How a dispatch ends, from why it stopped. */
export function finalStatus(stopReason: string | null): Extract<DispatchStatus, 'stopped' | 'container_unreachable'> {
  return stopReason === 'container_unreachable' ? 'container_unreachable' : 'stopped';
}

// What an operator sees in the Temporal UI. Built from the state only (it holds no token), so
// neither a summary nor the details can carry one.
const clock = (ms: number) => `${new Date(ms).toISOString().slice(11, 19)}Z`;

/** The mint's summary: "mint generation 1", "refresh generation 7", "refresh generation 7 (pull)". */
export function mintSummary(s: CarriedState, reason: string): string {
  const next = s.generation + 1;
  if (reason === 'initial') return `mint generation ${next}`;
  return reason === 'scheduled' ? `refresh generation ${next}` : `refresh generation ${next} (${reason})`;
}

/** The loop's timer: "wait until 12:34:56Z (refresh)", "(retry after provider_unavailable)", "(recheck installation_suspended)". */
export function waitSummary(s: CarriedState, mintAt: number): string {
  const why =
    s.retryAtMs === null
      ? 'refresh'
      : s.status === 'credential_error'
        ? `recheck ${s.lastError?.code ?? 'credentials'}`
        : `retry after ${s.lastError?.code ?? 'a failure'}`;
  return `wait until ${clock(mintAt)} (${why})`;
}

/** The run's current details (Markdown): status, generation, token expiry, last error code. */
export function currentDetails(s: CarriedState): string {
  const lines = [
    `**${s.status}** · generation ${s.generation} · ${s.credentialSource}`,
    s.generation === 0 ? 'no token yet' : `token expires ${s.tokenExpiresAt ?? 'never (static town token)'}`,
  ];
  if (s.lastError) lines.push(`last error \`${s.lastError.code}\` at ${s.lastError.at}`);
  return lines.join('  \n');
}
