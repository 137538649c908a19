// The token loop's state changes, without Temporal: plain state in, state or a decision out.
import { ActivityFailure, ApplicationFailure, RetryState } from '@temporalio/common';
import { FailureType } from '../../workflows/failure-types';
import type { CarriedState, GitTokenWorkflowInput, LeaseMeta } from '../../workflows/git-token-types';
import * as st from '../../workflows/git-token-state';
import { hashFraction } from '../../workflows/refresh-schedule';

const T0 = Date.parse('2026-01-01T00:00:00.000Z');
const iso = (ms: number) => new Date(ms).toISOString();
const input: GitTokenWorkflowInput = { dispatchId: 'd-1', rigId: 'r-1', townId: 't-1', marginSeconds: 300, jitterMaxSeconds: 60 };

/** Frozen all the way down: a function that mutates its input throws. */
function frozen<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const v of Object.values(value)) frozen(v);
    Object.freeze(value);
  }
  return value;
}

const lease = (over: Partial<LeaseMeta> = {}): LeaseMeta => ({
  generation: 1,
  expiresAt: iso(T0 + 3600_000),
  source: 'integration',
  fingerprint: 'fp',
  reused: false,
  pushed: 'acknowledged',
  ...over,
});

/** A dispatch holding generation `g`, minted at T0 for an hour, acknowledged by the container. */
function active(g = 1, over: Partial<CarriedState> = {}): CarriedState {
  return frozen({ ...st.afterMint(st.initialState(), lease({ generation: g }), input, T0).state, ...over });
}

const appFailure = (type: string, message = `${type} happened`) => ApplicationFailure.create({ type, message });
const viaActivity = (cause: Error) =>
  new ActivityFailure('activity failed', 'mintLease', '1', RetryState.NON_RETRYABLE_FAILURE, 'w', cause);

describe('status transitions', () => {
  it('starts with no token (fields in the order continue-as-new carries them)', () => {
    expect(Object.entries(st.initialState())).toEqual([
      ['status', 'starting'],
      ['credentialSource', 'none'],
      ['generation', 0],
      ['tokenExpiresAt', null],
      ['refreshedAt', null],
      ['lastError', null],
      ['mintedAtMs', null],
      ['pushedGeneration', 0],
      ['pushedExpiresAt', null],
      ['transientFailures', 0],
      ['retryAtMs', null],
      ['mintSeq', 0],
    ]);
  });

  it('shows exactly the public fields, none of the bookkeeping of the loop', () => {
    const s = active(2, { retryAtMs: T0 + 5, mintSeq: 4, lastError: { code: 'provider_unavailable', message: 'm', at: iso(T0) } });
    expect(st.view(s)).toStrictEqual({
      status: 'active',
      credentialSource: 'integration',
      generation: 2,
      tokenExpiresAt: iso(T0 + 3600_000),
      refreshedAt: iso(T0),
      lastError: { code: 'provider_unavailable', message: 'm', at: iso(T0) },
    });
  });

  it('starting → active: the lease, its mint time and the acknowledged push are recorded', () => {
    const step = st.afterMint(frozen(st.initialState()), lease(), input, T0);
    expect(step.stop).toBeNull();
    expect(step.state).toEqual({
      ...st.initialState(),
      status: 'active',
      credentialSource: 'integration',
      generation: 1,
      tokenExpiresAt: iso(T0 + 3600_000),
      refreshedAt: iso(T0),
      mintedAtMs: T0,
      pushedGeneration: 1,
      pushedExpiresAt: iso(T0 + 3600_000),
    });
  });

  it('a minted lease the container did not take is left for the loop to push; a gone container stops the dispatch', () => {
    const unpushed = st.afterMint(frozen(st.initialState()), lease({ pushed: undefined }), input, T0);
    expect(unpushed).toMatchObject({ state: { status: 'active', generation: 1, pushedGeneration: 0, pushedExpiresAt: null }, stop: null });
    expect(st.needsPush(unpushed.state)).toBe(true);
    const gone = st.afterMint(frozen(st.initialState()), lease({ pushed: 'gone' }), input, T0);
    expect(gone.stop).toBe('container gone');
    expect(st.needsPush(gone.state)).toBe(true);
  });

  it('a passing failure before the first token stays starting (degraded in runs recorded before that rule)', () => {
    const failure = appFailure(FailureType.providerUnavailable, 'GitHub answered 503');
    const starting = st.applyFailure(frozen(st.initialState()), failure, input, T0).state;
    expect(starting).toMatchObject({ status: 'starting', transientFailures: 1, lastError: { code: 'provider_unavailable' } });
    expect(st.applyFailure(frozen(st.initialState()), failure, input, T0, false).state.status).toBe('degraded');
    expect(st.afterMint(frozen(starting), lease({ generation: 1 }), input, T0 + 1000).state).toMatchObject({
      status: 'active',
      lastError: null,
    });
  });

  it('active → degraded on a transient failure, and back to active with the error cleared', () => {
    const now = T0 + 3000_000;
    const degraded = st.applyFailure(active(), appFailure(FailureType.providerUnavailable, 'GitHub answered 503'), input, now);
    expect(degraded.stop).toBeNull();
    expect(degraded.state).toMatchObject({
      status: 'degraded',
      generation: 1,
      lastError: { code: 'provider_unavailable', message: 'GitHub answered 503', at: iso(now) },
      transientFailures: 1,
      retryAtMs: now + 1000,
    });
    expect(st.view(degraded.state).status).toBe('degraded');

    const back = st.afterMint(frozen(degraded.state), lease({ generation: 2, expiresAt: iso(now + 3600_000) }), input, now + 1000);
    expect(back.state).toMatchObject({
      status: 'active',
      generation: 2,
      lastError: null,
      transientFailures: 0,
      retryAtMs: null,
      mintedAtMs: now + 1000,
      pushedGeneration: 2,
    });
  });

  it('→ credential_error on a permanent failure (from starting or active), and back to active', () => {
    const fromStart = st.applyFailure(frozen(st.initialState()), appFailure(FailureType.noCredentials), input, T0);
    expect(fromStart.state).toMatchObject({ status: 'credential_error', generation: 0, lastError: { code: 'no_credentials' } });

    const now = T0 + 3000_000;
    const failed = st.applyFailure(active(1, { transientFailures: 3 }), appFailure(FailureType.installationSuspended), input, now);
    expect(failed.state).toMatchObject({
      status: 'credential_error',
      lastError: { code: 'installation_suspended', message: 'installation_suspended happened', at: iso(now) },
      transientFailures: 0,
      retryAtMs: now + 15 * 60_000, // the default recheck
    });
    const back = st.afterMint(frozen(failed.state), lease({ generation: 2 }), input, now + 5000);
    expect(back.state).toMatchObject({ status: 'active', generation: 2, lastError: null, retryAtMs: null });
  });

  it('ends, state untouched, when the activity says the dispatch has ended', () => {
    const s = active();
    const step = st.applyFailure(s, viaActivity(appFailure('dispatch_ended')), input, T0 + 1000);
    expect(step.stop).toBe('dispatch ended');
    expect(step.state).toBe(s);
  });

  it('ends as container_unreachable only when that is why it stopped', () => {
    expect(st.finalStatus('container_unreachable')).toBe('container_unreachable');
    expect(st.finalStatus('container gone')).toBe('stopped');
    expect(st.finalStatus('stop requested')).toBe('stopped');
    expect(st.finalStatus(null)).toBe('stopped');
  });

  it('keeps the state plain JSON with its keys in one order (the continue-as-new payload stays the same)', () => {
    const keys = Object.keys(st.initialState());
    let s = st.initialState();
    s = st.afterMint(s, lease(), input, T0).state;
    s = st.applyFailure(s, new Error('socket hang up'), input, T0 + 1).state;
    s = st.applyFailure(s, appFailure(FailureType.reconnectRequired), input, T0 + 2).state;
    s = st.mintRequest(s, input, 'retry', 'run-1').state;
    s = st.afterPush(s, { outcome: 'acknowledged', generation: 1, expiresAt: iso(T0 + 10) }).state;
    expect(Object.keys(s)).toEqual(keys);
    expect(JSON.parse(JSON.stringify(s))).toEqual(s);
  });

  it('carries the scope a lease reports into the view, and leaves it out for leases that report none (older runs)', () => {
    const old = st.afterMint(st.initialState(), lease(), input, T0).state;
    expect(Object.keys(st.view(old))).not.toContain('credentialScope');
    expect(Object.keys(old)).toEqual(Object.keys(st.initialState())); // continue-as-new input as before
    const account = st.afterMint(old, lease({ generation: 2, scope: 'account', scopeReason: 'role' }), input, T0 + 1).state;
    expect(st.view(account)).toMatchObject({ credentialScope: 'account', credentialScopeReason: 'role' });
    const repo = st.afterMint(account, lease({ generation: 3, scope: 'repository', scopeReason: null }), input, T0 + 2).state;
    expect(st.view(repo)).toMatchObject({ credentialScope: 'repository', credentialScopeReason: null });
    // A retried mint that returns the stored lease says nothing of the scope: it stays.
    expect(st.view(st.afterMint(repo, lease({ generation: 3, reused: true }), input, T0 + 3).state).credentialScope).toBe('repository');
  });
});

describe('failures: permanent or transient', () => {
  const permanent: string[] = [
    FailureType.installationSuspended,
    FailureType.installationNotFound,
    FailureType.repositoryNotAccessible,
    FailureType.reconnectRequired,
    FailureType.noCredentials,
  ];

  it.each(Object.values(FailureType))('%s', (type) => {
    const step = st.applyFailure(active(), viaActivity(appFailure(type)), input, T0 + 1000);
    expect(step.state.status).toBe(permanent.includes(type) ? 'credential_error' : 'degraded');
    expect(step.state.lastError?.code).toBe(type);
  });

  it('names the code and message of a typed failure, directly or inside an ActivityFailure', () => {
    expect(st.failureCode(appFailure('reconnect_required', 'grant revoked'))).toEqual({
      code: 'reconnect_required',
      message: 'grant revoked',
    });
    expect(st.failureCode(viaActivity(appFailure('installation_not_found', 'gone')))).toEqual({
      code: 'installation_not_found',
      message: 'gone',
    });
  });

  it('counts anything untyped as the provider failing (transient)', () => {
    expect(st.failureCode(new Error('socket hang up'))).toEqual({ code: 'provider_unavailable', message: 'socket hang up' });
    expect(st.failureCode(viaActivity(new Error('timeout')))).toEqual({ code: 'provider_unavailable', message: 'timeout' });
    expect(st.failureCode('odd')).toEqual({ code: 'provider_unavailable', message: 'odd' });
    expect(st.failureCode(ApplicationFailure.create({ message: 'no type' }))).toEqual({ code: 'provider_unavailable', message: 'no type' });
    expect(st.applyFailure(active(), new Error('socket hang up'), input, T0).state.status).toBe('degraded');
  });
});

describe('backoff', () => {
  /** Delays before each retry over `n` consecutive transient failures. */
  function delays(n: number, marginSeconds: number): number[] {
    let s = active();
    const out: number[] = [];
    for (let i = 0; i < n; i++) {
      const now = T0 + i * 100_000;
      s = st.applyFailure(frozen(s), appFailure(FailureType.providerUnavailable), { ...input, marginSeconds }, now).state;
      out.push(s.retryAtMs! - now);
    }
    return out;
  }

  it('doubles from 1 s and stops at 30 s', () => {
    expect(delays(8, 300)).toEqual([1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000]);
  });

  it('stays under a quarter of a short margin, and never below half a second', () => {
    expect(delays(4, 8)).toEqual([1000, 2000, 2000, 2000]);
    expect(delays(3, 1)).toEqual([500, 500, 500]);
  });

  it('a permanent failure resets the count and rechecks after recheckSeconds', () => {
    let s = active(1, { transientFailures: 4 });
    s = st.applyFailure(s, appFailure(FailureType.repositoryNotAccessible), { ...input, recheckSeconds: 4 }, T0).state;
    expect(s).toMatchObject({ transientFailures: 0, retryAtMs: T0 + 4000 });
    s = st.applyFailure(frozen(s), appFailure(FailureType.providerUnavailable), input, T0 + 5000).state;
    expect(s).toMatchObject({ status: 'degraded', transientFailures: 1, retryAtMs: T0 + 6000 });
  });
});

describe('refresh time', () => {
  it('is margin plus a per-dispatch, per-generation jitter before expiry', () => {
    const s = active(3);
    const at = st.refreshAt(s, input)!;
    expect(at).toBe(T0 + 3600_000 - 300_000 - 60_000 * hashFraction('d-1:3'));
    expect(at).toBeGreaterThanOrEqual(T0 + 3600_000 - 360_000);
    expect(at).toBeLessThanOrEqual(T0 + 3600_000 - 300_000);
    expect(st.refreshAt(active(4), input)).not.toBe(at);
    expect(st.refreshAt(s, { ...input, dispatchId: 'd-2' })).not.toBe(at);
    expect(st.refreshAt(s, { ...input, jitterMaxSeconds: 0 })).toBe(T0 + 3600_000 - 300_000);
  });

  it('is half-life for tokens shorter than twice the lead', () => {
    const s = st.afterMint(st.initialState(), lease({ expiresAt: iso(T0 + 8000) }), input, T0).state;
    expect(st.refreshAt(s, input)).toBe(T0 + 4000);
    // Jitter is capped at a tenth of the lifetime: 8 s with a 3 s margin refreshes 3-3.8 s before expiry.
    const short = { ...input, marginSeconds: 3, jitterMaxSeconds: 60 };
    expect(st.refreshAt(s, short)).toBe(T0 + 8000 - 3000 - 800 * hashFraction('d-1:1'));
  });

  it('is never for a static token or before the first mint', () => {
    expect(st.refreshAt(st.initialState(), input)).toBeNull();
    expect(st.refreshAt(active(1, { tokenExpiresAt: null }), input)).toBeNull();
  });
});

describe('next mint', () => {
  const refresh = st.refreshAt(active(), input)!;

  it('changed comes first, then a retry, then the first mint, then the schedule', () => {
    const now = T0 + 60_000;
    expect(st.nextMintAt(active(1, { retryAtMs: T0 + 90_000 }), input, true, now)).toBe(now);
    expect(st.nextMintAt(st.initialState(), input, true, now)).toBe(now);
    expect(st.nextMintAt({ ...st.initialState(), retryAtMs: T0 + 90_000 }, input, false, now)).toBe(T0 + 90_000);
    expect(st.nextMintAt(active(1, { retryAtMs: T0 + 90_000 }), input, false, now)).toBe(T0 + 90_000);
    expect(st.nextMintAt(st.initialState(), input, false, now)).toBe(now);
    expect(st.nextMintAt(active(), input, false, now)).toBe(refresh);
    expect(st.nextMintAt(active(1, { tokenExpiresAt: null }), input, false, now)).toBeNull(); // static: only a signal
  });

  it('names its reason: changed, initial, retry, scheduled', () => {
    expect(st.mintReason(active(1, { retryAtMs: T0 }), true)).toBe('changed');
    expect(st.mintReason({ ...st.initialState(), retryAtMs: T0 }, false)).toBe('initial');
    expect(st.mintReason(active(1, { retryAtMs: T0 }), false)).toBe('retry');
    expect(st.mintReason(active(), false)).toBe('scheduled');
  });

  it('a scheduled mint says when it was due and asks for a token that outlives the lead', () => {
    const s = active(2, { mintSeq: 6 });
    const { state, request } = st.mintRequest(s, input, 'scheduled', 'run-9');
    const lead = (T0 + 3600_000 - refreshAtOf(s)) / 1000;
    expect(request).toEqual({
      dispatchId: 'd-1',
      mintKey: 'run-9:7',
      reason: 'scheduled',
      scheduledFor: iso(refreshAtOf(s)),
      push: true,
      minValiditySeconds: Math.ceil(lead) + 1,
    });
    expect(request.minValiditySeconds).toBeGreaterThanOrEqual(301);
    expect(request.minValiditySeconds).toBeLessThanOrEqual(361);
    expect(state).toEqual({ ...s, mintSeq: 7 });
  });

  it('a retry after a failed scheduled refresh asks for the same validity, so a shared token is not handed back again', () => {
    const s = active(2, { mintSeq: 6 });
    const due = refreshAtOf(s);
    const failed = st.applyFailure(
      st.mintRequest(s, input, 'scheduled', 'run-9').state,
      appFailure(FailureType.providerUnavailable),
      input,
      due + 10,
    ).state;
    expect(st.mintReason(failed, false)).toBe('retry');
    const { request } = st.mintRequest(failed, input, 'retry', 'run-9');
    expect(request).toMatchObject({ reason: 'retry', scheduledFor: null, minValiditySeconds: Math.ceil((T0 + 3600_000 - due) / 1000) + 1 });
  });

  it('other mints carry no schedule and no validity floor', () => {
    expect(st.mintRequest(st.initialState(), input, 'initial', 'run-1').request).toEqual({
      dispatchId: 'd-1',
      mintKey: 'run-1:1',
      reason: 'initial',
      scheduledFor: null,
      push: true,
    });
    expect(st.mintRequest(active(), input, 'pull', 'run-1').request).not.toHaveProperty('minValiditySeconds');
    expect(st.mintRequest(active(), input, 'changed', 'run-1').request).not.toHaveProperty('minValiditySeconds');
    // A retry before any token: nothing to outlive.
    expect(st.mintRequest({ ...st.initialState(), retryAtMs: T0 }, input, 'retry', 'run-1').request).not.toHaveProperty(
      'minValiditySeconds',
    );
  });

  function refreshAtOf(s: CarriedState): number {
    return st.refreshAt(s, input)!;
  }
});

describe('reused lease', () => {
  it('keeps the original mint time, so the refresh time does not move', () => {
    const s = active();
    const next = st.afterMint(s, lease({ reused: true, pushed: undefined }), input, T0 + 60_000).state;
    expect(next.mintedAtMs).toBe(T0);
    expect(next.refreshedAt).toBe(iso(T0 + 60_000));
    expect(next.retryAtMs).toBeNull();
    expect(st.refreshAt(next, input)).toBe(st.refreshAt(s, input));
  });

  it('whose refresh time already passed looks again after the first backoff step instead of spinning', () => {
    const s = active();
    const late = st.refreshAt(s, input)! + 10;
    const next = st.afterMint(s, lease({ reused: true, pushed: undefined }), input, late).state;
    expect(next.retryAtMs).toBe(late + 1000);
    expect(st.nextMintAt(next, input, false, late)).toBe(late + 1000);
    // The same token minted anew (not reused) starts a fresh schedule instead.
    expect(st.afterMint(s, lease({ generation: 2 }), input, late).state.retryAtMs).toBeNull();
  });

  it('a reused static token has no refresh time to pass', () => {
    const s = active(1, { tokenExpiresAt: null, pushedExpiresAt: null });
    const next = st.afterMint(s, lease({ expiresAt: null, source: 'town_git_auth', reused: true, pushed: undefined }), input, T0 + 1);
    expect(next.state.retryAtMs).toBeNull();
  });
});

describe('pulls', () => {
  it('mint only when no newer lease exists and the loop is not backing off (unless credentials changed)', () => {
    const now = T0 + 1000;
    expect(st.pullNeedsMint(active(3), 2, false, now)).toBe(false);
    expect(st.pullNeedsMint(active(3), 3, false, now)).toBe(true);
    expect(st.pullNeedsMint(active(3, { retryAtMs: now + 1 }), 3, false, now)).toBe(false);
    expect(st.pullNeedsMint(active(3, { retryAtMs: now + 1 }), 3, true, now)).toBe(true);
    expect(st.pullNeedsMint(active(3, { retryAtMs: now }), 3, false, now)).toBe(true);
    expect(st.pullNeedsMint({ ...st.initialState(), retryAtMs: now + 900_000 }, 0, false, now)).toBe(false);
  });
});

describe('stop', () => {
  it('retries revoking and recording the end until the held token has expired (and a minute more), at least ten minutes; a week for a static token', () => {
    const now = T0 + 1000;
    // An hour-long GitHub token minted at T0: its expiry and the minute a stop still revokes after it.
    expect(st.finishDeadlineMs(active(1), now)).toBe(3600_000 - 1000 + 60_000);
    // A token about to expire, an expired one, no token yet: the ten-minute floor.
    expect(st.finishDeadlineMs(active(1, { tokenExpiresAt: iso(now + 30_000) }), now)).toBe(600_000);
    expect(st.finishDeadlineMs(active(1, { tokenExpiresAt: iso(now - 30_000) }), now)).toBe(600_000);
    expect(st.finishDeadlineMs(st.initialState(), now)).toBe(600_000);
    // A static town token never expires, and its pulls never ask the workflow: a week.
    expect(st.finishDeadlineMs(active(1, { tokenExpiresAt: null }), now)).toBe(7 * 24 * 3600_000);
  });
});

describe('push', () => {
  const now = T0 + 1000;

  it('retries a static token for the static deadline', () => {
    const s = active(1, { tokenExpiresAt: null, pushedGeneration: 0, pushedExpiresAt: null });
    expect(st.pushDeadlineMs(s, input, now)).toBe(600_000);
    expect(st.pushDeadlineMs(s, { ...input, staticPushDeadlineSeconds: 5 }, now)).toBe(5000);
    expect(st.pushDeadlineMs({ ...s, generation: 2, pushedGeneration: 1 }, input, now)).toBe(600_000);
  });

  it('retries an expiring token until the token the container holds expires', () => {
    // Nothing pushed yet: the new token's own expiry.
    expect(st.pushDeadlineMs(active(1, { pushedGeneration: 0, pushedExpiresAt: null }), input, now)).toBe(3600_000 - 1000);
    // Generation 2 waiting, the container holds generation 1 until T0 + 20 minutes.
    const s = active(2, { pushedGeneration: 1, pushedExpiresAt: iso(T0 + 1200_000) });
    expect(st.pushDeadlineMs(s, input, now)).toBe(1199_000);
    // The container holds a static token and a new expiring one waits: its expiry bounds the push.
    expect(st.pushDeadlineMs({ ...s, pushedExpiresAt: null }, input, now)).toBe(3600_000 - 1000);
    // The container holds an expiring token and a static one waits: the held token's expiry.
    expect(st.pushDeadlineMs({ ...s, tokenExpiresAt: null }, input, now)).toBe(1199_000);
  });

  it('retries at least the refresh margin when the held token expires sooner (a refresh that came late)', () => {
    // After an outage on this side the held token expired a minute ago, or expires in 2 minutes:
    // the push still retries for the margin (300 s), not for a second.
    const expired = active(2, { pushedGeneration: 1, pushedExpiresAt: iso(T0 - 60_000) });
    expect(st.pushDeadlineMs(expired, input, now)).toBe(300_000);
    expect(st.pushDeadlineMs({ ...expired, pushedExpiresAt: iso(T0 + 120_000) }, input, now)).toBe(300_000);
    // A new token living less than the margin bounds it: retrying past its expiry would push a dead token.
    expect(st.pushDeadlineMs({ ...expired, tokenExpiresAt: iso(T0 + 61_000) }, input, now)).toBe(60_000);
    // A static token waiting: the margin, within the static deadline.
    expect(st.pushDeadlineMs({ ...expired, tokenExpiresAt: null }, input, now)).toBe(300_000);
    expect(st.pushDeadlineMs({ ...expired, tokenExpiresAt: null }, { ...input, staticPushDeadlineSeconds: 30 }, now)).toBe(30_000);
  });

  it('records what the container acknowledged, never going back a generation', () => {
    const s = active(3, { pushedGeneration: 1, pushedExpiresAt: iso(T0) });
    expect(st.afterPush(s, { outcome: 'acknowledged', generation: 3, expiresAt: iso(T0 + 5) })).toEqual({
      state: { ...s, pushedGeneration: 3, pushedExpiresAt: iso(T0 + 5) },
      stop: null,
    });
    expect(
      st.afterPush(active(3, { pushedGeneration: 3 }), { outcome: 'acknowledged', generation: 2, expiresAt: iso(T0 + 7) }).state,
    ).toMatchObject({ pushedGeneration: 3, pushedExpiresAt: iso(T0 + 7) });
    // Nothing to push: counted as pushed, so the loop does not push again and again.
    const none = st.afterPush(s, { outcome: 'no_lease', generation: 0, expiresAt: null });
    expect(none.state).toMatchObject({ pushedGeneration: 3, pushedExpiresAt: iso(T0) });
    expect(st.needsPush(none.state)).toBe(false);
    expect(st.afterPush(s, { outcome: 'gone', generation: 3, expiresAt: null })).toEqual({ state: s, stop: 'container gone' });
  });

  it('gives up as container_unreachable unless a newer, still valid lease arrived meanwhile', () => {
    expect(st.afterPushFailure(active(2), 2, now).stop).toBe('container_unreachable');
    expect(st.afterPushFailure(active(3), 2, now).stop).toBeNull();
    expect(st.afterPushFailure(active(3, { tokenExpiresAt: iso(now) }), 2, now).stop).toBe('container_unreachable');
    expect(st.afterPushFailure(active(3, { tokenExpiresAt: null }), 2, now).stop).toBeNull();
  });

  it('a lease is valid while it has not expired; none before the first', () => {
    expect(st.leaseValid(st.initialState(), now)).toBe(false);
    expect(st.leaseValid(active(), now)).toBe(true);
    expect(st.leaseValid(active(1, { tokenExpiresAt: iso(now) }), now)).toBe(false);
    expect(st.leaseValid(active(1, { tokenExpiresAt: null }), now)).toBe(true);
  });
});

describe('what the operator sees (summaries and current details; the state holds no token, so they cannot either)', () => {
  it('names the generation a mint is for, and why when it is not the schedule', () => {
    expect(st.mintSummary(st.initialState(), 'initial')).toBe('mint generation 1');
    expect(st.mintSummary(active(6), 'scheduled')).toBe('refresh generation 7');
    expect(st.mintSummary(active(6), 'pull')).toBe('refresh generation 7 (pull)');
    expect(st.mintSummary(active(6), 'changed')).toBe('refresh generation 7 (changed)');
  });

  it('says until when the loop waits and what for', () => {
    const at = Date.parse('2026-01-01T12:34:56.789Z');
    expect(st.waitSummary(active(), at)).toBe('wait until 12:34:56Z (refresh)');
    const degraded = st.applyFailure(active(), appFailure(FailureType.providerUnavailable), input, T0).state;
    expect(st.waitSummary(degraded, at)).toBe('wait until 12:34:56Z (retry after provider_unavailable)');
    const suspended = st.applyFailure(active(), appFailure(FailureType.installationSuspended), input, T0).state;
    expect(st.waitSummary(suspended, at)).toBe('wait until 12:34:56Z (recheck installation_suspended)');
  });

  it('details the status, generation, source, token expiry and the last error code (not its message)', () => {
    expect(st.currentDetails(st.initialState())).toBe('**starting** · generation 0 · none  \nno token yet');
    expect(st.currentDetails(active(3))).toBe(`**active** · generation 3 · integration  \ntoken expires ${iso(T0 + 3600_000)}`);
    expect(st.currentDetails(active(2, { tokenExpiresAt: null, credentialSource: 'town_git_auth' }))).toBe(
      '**active** · generation 2 · town_git_auth  \ntoken expires never (static town token)',
    );
    const failed = st.applyFailure(active(3), appFailure(FailureType.installationSuspended, 'suspended by acme'), input, T0).state;
    expect(st.currentDetails(failed)).toBe(
      `**credential_error** · generation 3 · integration  \ntoken expires ${iso(T0 + 3600_000)}  \nlast error \`installation_suspended\` at ${iso(T0)}`,
    );
  });
});

describe('sleeping elsewhere (the rule of runs started before `queues`)', () => {
  const sleeping = { taskQueue: 'q-sleeping', afterSeconds: 600 };
  const withSleeping = { ...input, sleeping };
  const main = { taskQueue: 'q', cycles: 1 };

  it('moves a long wait, or one without an end, from the main queue to the sleeping one', () => {
    expect(st.sleepsElsewhere(withSleeping, T0 + 600_000, T0, main)).toBe(true);
    expect(st.sleepsElsewhere(withSleeping, null, T0, { taskQueue: 'q', cycles: 0 })).toBe(true);
    expect(st.sleepsElsewhere(withSleeping, T0 + 599_999, T0, main)).toBe(false);
  });

  it('waits in a run that has just started on the sleeping queue, and moves on from one that refreshed', () => {
    expect(st.sleepsElsewhere(withSleeping, T0 + 3_000_000, T0, { taskQueue: 'q-sleeping', cycles: 0 })).toBe(false);
    expect(st.sleepsElsewhere(withSleeping, T0 + 3_000_000, T0, { taskQueue: 'q-sleeping', cycles: 1 })).toBe(true);
  });

  it('never moves a run started without a sleeping queue (before it existed, or turned off)', () => {
    expect(st.sleepsElsewhere(input, null, T0, main)).toBe(false);
    expect(st.sleepsElsewhere(input, T0 + 86_400_000, T0, main)).toBe(false);
  });
});

describe('queueBeforeWait', () => {
  const queues = { current: 'q', main: 'q', hot: 'q-hot', afterSeconds: 600 };
  const onHot = { ...queues, current: 'q-hot' };
  const started = { cycles: 1, continued: false };
  const continued = { cycles: 0, continued: true };

  it('waits where the dispatch started after its first token when the wait is long or has no end', () => {
    expect(st.queueBeforeWait(queues, T0 + 600_000, T0, started)).toBeNull();
    expect(st.queueBeforeWait(queues, null, T0, started)).toBeNull();
    expect(st.queueBeforeWait(queues, T0 + 3_000_000, T0, continued)).toBeNull();
  });

  it('starts a new run on the main queue once a run there has refreshed, so the replay at the next wake stays short', () => {
    expect(st.queueBeforeWait(queues, T0 + 3_000_000, T0, { cycles: 2, continued: false })).toBe('q');
    expect(st.queueBeforeWait(queues, T0 + 3_000_000, T0, { cycles: 1, continued: true })).toBe('q');
  });

  it('moves a short wait to the hot queue, keeps it there, and moves a long one back', () => {
    expect(st.queueBeforeWait(queues, T0 + 599_999, T0, started)).toBe('q-hot');
    expect(st.queueBeforeWait(onHot, T0 + 30_000, T0, { cycles: 40, continued: true })).toBeNull();
    expect(st.queueBeforeWait(onHot, T0 + 600_000, T0, { cycles: 3, continued: true })).toBe('q');
    expect(st.queueBeforeWait(onHot, null, T0, { cycles: 0, continued: true })).toBe('q');
  });
});
