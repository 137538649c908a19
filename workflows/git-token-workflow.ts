// One long-lived workflow per agent dispatch: mint a token, push it to the container, sleep until
// just before expiry, refresh, push again; on stop revoke it. Tokens never enter this file: the
// activities store them encrypted and the workflow only sees generations and expiries. The state
// changes are pure functions in git-token-state.ts; this file issues the commands.
import {
  ApplicationFailure,
  CancellationScope,
  allHandlersFinished,
  condition,
  defineQuery,
  defineSignal,
  defineUpdate,
  log,
  makeContinueAsNewFunc,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { createTokenActivities } from '../activities/token-activities';
import type { CarriedState, DispatchView, GitTokenWorkflowInput, GitTokenWorkflowResult } from './git-token-types';
import * as state from './git-token-state';
import { runPublisher } from './run-publisher';

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

// Activity presets, a proxy per call so its summary (in the Temporal UI) names the generation.
// Minting (which also pushes) is a local activity: run inside the workflow task it saves the server
// an activity task and a workflow task per refresh. It retries quickly for blips; longer outages are
// retried by the loop itself (the dispatch shows `degraded`). A worker that dies mid-mint loses its
// workflow task, and the next worker's mint returns the lease the first attempt stored (mint key).
function mintActivities(summary: string) {
  return proxyLocalActivities<Activities>({
    // Above the worst case inside: mint (10 s) + verification (~16 s) + a lease write waiting for a
    // pooled connection (20 s). A timeout here would mint a second token.
    startToCloseTimeout: '60 seconds',
    retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '2 seconds', maximumAttempts: 3 },
    summary,
  });
}
/** A stop retries until `deadlineMs` (state.finishDeadlineMs): past the held token's expiry, at least ten minutes. */
function finishActivities(deadlineMs: number, summary: string) {
  return proxyActivities<Activities>({
    startToCloseTimeout: '30 seconds',
    scheduleToCloseTimeout: deadlineMs,
    retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds' },
    summary,
  });
}
/** Pushes retry until `deadlineMs` (state.pushDeadlineMs): past that, the container is unreachable. */
function pushActivities(deadlineMs: number, summary: string) {
  return proxyActivities<Activities>({
    startToCloseTimeout: '10 seconds',
    scheduleToCloseTimeout: Math.max(1000, deadlineMs),
    retry: { initialInterval: '500 milliseconds', backoffCoefficient: 2, maximumInterval: '15 seconds' },
    summary,
  });
}

/** Keeps one dispatch's container supplied with a fresh git token until it stops. */
export async function gitTokenWorkflow(input: GitTokenWorkflowInput): Promise<GitTokenWorkflowResult> {
  let s: CarriedState = input.state ?? state.initialState();
  const cyclesPerRun = input.cyclesPerRun ?? state.DEFAULT_CYCLES_PER_RUN;
  let stopReason: string | null = null;
  let changed = false;
  let cycles = 0;
  let refreshing: Promise<void> | undefined;
  const publish = runPublisher(input.state);

  /** The first reason to stop wins. */
  const stop = (reason: string | null) => void (stopReason ??= reason);
  /** Takes a state change and the stop it may call for. */
  const take = (step: state.Step) => {
    s = step.state;
    stop(step.stop);
  };

  const mint = async (reason: string): Promise<void> => {
    const summary = state.mintSummary(s, reason);
    const next = state.mintRequest(s, input, reason, workflowInfo().runId);
    const changedBefore = changed;
    [changed, s] = [false, next.state];
    try {
      const lease = await mintActivities(summary).mintLease(next.request);
      take(state.afterMint(s, lease, input, Date.now()));
      // A refused task (a signal came as it continued as new) reran this mint after the signal: mint anew.
      if (lease.retried && changedBefore) changed = true;
    } catch (err) {
      // Before its first token a passing failure leaves the run `starting`; a history recorded before
      // that rule (no marker) replays saying `degraded`, as it did.
      const step = state.applyFailure(s, err, input, Date.now(), s.status === 'starting' && patched('starting-until-first-token'));
      take(step);
      if (step.stop === null) log.warn('mint failed', { dispatchId: input.dispatchId, code: s.lastError?.code, status: s.status });
    }
    publish(s);
  };

  /** Single flight: a pull arriving while the loop refreshes waits for that refresh. */
  const refreshOnce = (reason: string): Promise<void> => (refreshing ??= mint(reason).finally(() => (refreshing = undefined)));

  setHandler(stopSignal, (arg) => stop(arg?.reason ?? 'stop requested'));
  setHandler(credentialsChangedSignal, ({ reason }) => {
    log.info('credentials changed', { dispatchId: input.dispatchId, reason });
    changed = true;
  });
  setHandler(statusQuery, () => state.view(s));
  setHandler(
    refreshNowUpdate,
    async ({ staleGeneration }) => {
      if (state.pullNeedsMint(s, staleGeneration, changed, Date.now())) await refreshOnce('pull');
      return state.view(s);
    },
    {
      validator: ({ staleGeneration }) => {
        if (stopReason !== null)
          throw ApplicationFailure.create({ type: 'dispatch_ended', message: 'dispatch has ended', nonRetryable: true });
        // Nothing to do (a newer lease is stored, or the run waits out a backoff or a credential
        // error): refused, so the pull reads the lease as it is and no event goes into the history.
        // Accepted, each such pull wrote two, and a container pulling through a credential error
        // filled a run's history (and its update limit). Validators do not run on replay.
        if (refreshing === undefined && !state.pullNeedsMint(s, staleGeneration, changed, Date.now()))
          throw ApplicationFailure.create({ type: 'nothing_to_refresh', message: 'no refresh is due', nonRetryable: true });
      },
    },
  );

  publish(s);
  for (;;) {
    if (stopReason !== null) break;
    const mintAt = state.nextMintAt(s, input, changed, Date.now());
    if (mintAt !== null && mintAt <= Date.now()) {
      await refreshOnce(state.mintReason(s, changed));
      cycles += 1;
      continue;
    }
    if (state.needsPush(s)) {
      const ended = await pushCurrent();
      if (ended) {
        stopReason = ended;
        break;
      }
      continue;
    }
    // A long wait is slept where the worker does not keep the run in memory, a short one where it does
    // (README, "Performance"): runs started with `queues` follow them; runs started before, with
    // `sleeping`, continue onto the sleeping queue (runs recorded before that have no marker and stay).
    const onto = input.queues
      ? state.queueBeforeWait(input.queues, mintAt, Date.now(), { cycles, continued: input.state !== undefined })
      : state.sleepsElsewhere(input, mintAt, Date.now(), { taskQueue: workflowInfo().taskQueue, cycles }) &&
          patched('sleep-on-sleeping-queue')
        ? input.sleeping!.taskQueue
        : null;
    if (cycles >= cyclesPerRun || workflowInfo().continueAsNewSuggested || onto !== null) {
      await condition(allHandlersFinished);
      // A signal or a pull's mint may have arrived while handlers finished: handle it in this run.
      const next = makeContinueAsNewFunc<typeof gitTokenWorkflow>(onto !== null ? { taskQueue: onto } : {});
      const queues = input.queues && onto !== null ? { queues: { ...input.queues, current: onto } } : {};
      if (stopReason === null && !changed && !state.needsPush(s)) return next({ ...input, ...queues, state: s });
      continue;
    }
    const seenGeneration = s.generation;
    const woke = () => stopReason !== null || changed || s.generation !== seenGeneration;
    if (mintAt === null) await condition(woke);
    else await condition(woke, Math.max(1, mintAt - Date.now()), { summary: state.waitSummary(s, mintAt) });
  }

  // Stop: let a pull's refresh finish, then revoke what this dispatch holds and end.
  await condition(allHandlersFinished);
  const status = state.finalStatus(stopReason);
  try {
    const ending = { dispatchId: input.dispatchId, status, reason: stopReason ?? 'stopped' };
    await finishActivities(state.finishDeadlineMs(s, Date.now()), `revoke and end (${status})`).finishDispatch(ending);
  } catch (err) {
    // Retries until the held token expired could not reach Postgres: end anyway, the reason is in the history.
    log.error('could not record the end of the dispatch', { dispatchId: input.dispatchId, error: state.failureCode(err).message });
  }
  s = { ...s, status };
  publish(s);
  return { status: s.status, generation: s.generation };

  /**
   * Pushes the current lease; returns a stop reason when the container is gone or unreachable.
   * Retries run until the push deadline (the held token's expiry, at least the margin), but a stop,
   * a credential change or a newer lease interrupts them at once.
   */
  async function pushCurrent(): Promise<string | null> {
    const generation = s.generation;
    const deadlineMs = state.pushDeadlineMs(s, input, Date.now());
    const pushScope = new CancellationScope();
    const waitScope = new CancellationScope();
    const pushing = pushScope.run(() =>
      pushActivities(deadlineMs, `push generation ${generation} to container`).pushLease({ dispatchId: input.dispatchId }),
    );
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
    const step = outcome.kind === 'done' ? state.afterPush(s, outcome.result) : state.afterPushFailure(s, generation, Date.now());
    s = step.state;
    if (outcome.kind === 'failed' && step.stop !== null) {
      log.warn('container unreachable', { dispatchId: input.dispatchId, error: state.failureCode(outcome.err).message });
    }
    return step.stop;
  }
}
