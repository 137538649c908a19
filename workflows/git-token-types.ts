// Plain-JSON shapes that cross the workflow boundary. None of them may carry a token: activities
// keep tokens in Postgres (encrypted) and hand the workflow only generations, expiries and
// fingerprints.

export type DispatchStatus = 'starting' | 'active' | 'degraded' | 'credential_error' | 'stopped' | 'container_unreachable';
/** The statuses a dispatch ends in: nothing is minted, pushed or pulled for it any more. */
export const ENDED_STATUSES: readonly DispatchStatus[] = ['stopped', 'container_unreachable'];
export type CredentialSource = 'integration' | 'town_git_auth' | 'none';
/** How far a token reaches: the rig's repository alone, all the connecting account reaches, or a town's static token. */
export type CredentialScope = 'repository' | 'account' | 'static';

export interface LastError {
  code: string;
  message: string;
  at: string;
}

/** What an activity may say about a lease: never the token itself. */
export interface LeaseMeta {
  generation: number;
  /** ISO time; null only for a static town token. */
  expiresAt: string | null;
  source: CredentialSource;
  fingerprint: string;
  /** True when the credential did not change, so no new generation was written. */
  reused: boolean;
  /** Set when the mint also pushed the new lease: acknowledged, or the container is gone. */
  pushed?: 'acknowledged' | 'gone';
  /**
   * True when an earlier attempt of this mint (same mint key) had stored the lease: what it returns
   * was read from the credentials as they were then, before any signal this attempt's run has seen.
   */
  retried?: boolean;
  /** How far the token reaches, and why a GitLab grant stands in (absent from leases minted before this existed). */
  scope?: CredentialScope;
  scopeReason?: string | null;
}

export interface MintLeaseInput {
  dispatchId: string;
  /** Idempotency key (workflow run + mint sequence): a retried activity returns the lease it wrote. */
  mintKey: string;
  /** Why this mint happens, for logs and metrics: scheduled, pull, changed, initial, retry. */
  reason: string;
  /** When the workflow meant to refresh (ISO), to measure lateness. */
  scheduledFor: string | null;
  /** Push a new lease to the container at once (one attempt; the loop retries failures). */
  push?: boolean;
  /**
   * A shared (GitLab) token with less than this left is refreshed rather than reused: the
   * workflow's own lead time, so a scheduled refresh never gets back the token it is replacing.
   */
  minValiditySeconds?: number;
}

export interface PushLeaseInput {
  dispatchId: string;
}

export interface PushLeaseResult {
  /** `gone`: the container answered 404/410 (or the dispatch no longer exists); `no_lease`: nothing to push. */
  outcome: 'acknowledged' | 'gone' | 'no_lease';
  generation: number;
  /** Expiry of the token pushed (ISO), null for a static token or when nothing was pushed. */
  expiresAt: string | null;
}

export interface FinishDispatchInput {
  dispatchId: string;
  status: Extract<DispatchStatus, 'stopped' | 'container_unreachable'>;
  reason: string;
}

/** The live status a query or update returns; mirrors GET /api/dispatches/:id. */
export interface DispatchView {
  status: DispatchStatus;
  credentialSource: CredentialSource;
  generation: number;
  tokenExpiresAt: string | null;
  refreshedAt: string | null;
  lastError: LastError | null;
  /** Absent until a lease says (and in runs whose leases predate it). */
  credentialScope?: CredentialScope;
  credentialScopeReason?: string | null;
}

/** State carried across continue-as-new. */
export interface CarriedState extends DispatchView {
  /** Workflow time of the last mint (ms), for scheduling. */
  mintedAtMs: number | null;
  pushedGeneration: number;
  /** Expiry of the token the container acknowledged last (ISO; null for none or a static token). */
  pushedExpiresAt: string | null;
  transientFailures: number;
  /** When to try again after a failure (ms), or null. */
  retryAtMs: number | null;
  mintSeq: number;
}

export interface GitTokenWorkflowInput {
  dispatchId: string;
  rigId: string;
  townId: string;
  marginSeconds: number;
  jitterMaxSeconds: number;
  /** While waiting on a permanent failure, look again this often even without a signal. */
  recheckSeconds?: number;
  /** How long to keep pushing a static (non-expiring) token before calling the container unreachable. */
  staticPushDeadlineSeconds?: number;
  /** Refresh cycles per run before continue-as-new. */
  cyclesPerRun?: number;
  /**
   * Where a dispatch sleeps out a wait of at least `afterSeconds` (or one without an end): a task
   * queue whose worker keeps few runs in memory. The rule of runs started before `queues`; a run that
   * has `queues` ignores it (the API still sends it for workers of earlier builds during a deploy).
   */
  sleeping?: { taskQueue: string; afterSeconds: number };
  /**
   * Where each wait is waited out: one of at least `afterSeconds` (or without an end) on `main`, whose
   * worker keeps few runs in memory, a shorter one on `hot`, whose worker keeps its runs cached.
   * `current` is this run's queue (carried here: an offline replay does not see the real one).
   * Absent in runs started before it existed.
   */
  queues?: { current: string; main: string; hot: string; afterSeconds: number };
  state?: CarriedState;
}

export interface GitTokenWorkflowResult {
  status: DispatchStatus;
  generation: number;
}
