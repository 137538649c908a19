// Temporal connection helpers shared by the composition root, the dev tooling and tests.
import { Connection, WorkflowNotFoundError, type WorkflowHandle } from '@temporalio/client';
import type { SignalDefinition } from '@temporalio/common';
import { grpc, temporal } from '@temporalio/proto';

const KEYWORD = temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD;
import { SEARCH_ATTRIBUTES } from '../workflows/search-attributes';

/** Registers the contract's search attributes on `namespace`, adding only the missing ones. */
export async function ensureSearchAttributes(connection: Connection, namespace: string): Promise<string[]> {
  const existing = await connection.operatorService.listSearchAttributes({ namespace });
  const known = { ...existing.customAttributes, ...existing.systemAttributes };
  const missing = Object.keys(SEARCH_ATTRIBUTES).filter((name) => !(name in known));
  if (missing.length === 0) return [];
  await connection.operatorService.addSearchAttributes({
    namespace,
    searchAttributes: Object.fromEntries(missing.map((n) => [n, KEYWORD])),
  });
  return missing;
}

/**
 * Signals a workflow's current run; false when no run of it is open. A signal to the current run
 * can meet its continue-as-new and be told the workflow is not found (temporalio/temporal#2694; a
 * dispatch continues as new onto the sleeping task queue right after its first token), so a
 * not-found is believed only once describe agrees; while a run is open the signal is sent again.
 * Other failures are thrown.
 */
export async function signalCurrentRun<Args extends unknown[]>(
  handle: WorkflowHandle,
  signal: SignalDefinition<Args>,
  ...args: Args
): Promise<boolean> {
  for (let attempt = 1; ; attempt++) {
    try {
      await handle.signal(signal, ...args);
      return true;
    } catch (err) {
      if (!(err instanceof WorkflowNotFoundError) || attempt >= 5) throw err;
    }
    const open = await handle.describe().then(
      (d) => d.status.name === 'RUNNING',
      (err: unknown) => (err instanceof WorkflowNotFoundError ? false : Promise.reject(err)),
    );
    if (!open) return false;
    await new Promise((r) => setTimeout(r, 50 * attempt));
  }
}

type ContextStorage = Connection['callContextStorage'];

/**
 * Whether AsyncLocalStorage runs on AsyncContextFrame, with no promise hook to switch off: Node 24
 * and later unless turned off, Node 22 and 23 when turned on (`--[no-]async-context-frame`, or
 * `--[no-]experimental-async-context-frame`; `_` for `-` as Node allows; NODE_OPTIONS first, then the
 * command line, the last one winning). (There, `disable()` does not clear what continuations already
 * captured either.)
 */
export function usesAsyncContextFrame(
  version = process.versions.node,
  flags: readonly string[] = [...(process.env.NODE_OPTIONS ?? '').split(/\s+/), ...process.execArgv],
): boolean {
  let on = Number(version.split('.')[0]) >= 24;
  for (const flag of flags) {
    const m = /^--(no-)?(?:experimental-)?async-context-frame$/.exec(flag.replace(/_/g, '-'));
    if (m) on = m[1] === undefined;
  }
  return on;
}

/**
 * The Temporal client runs every call in an AsyncLocalStorage (the namespace header, deadlines).
 * On Node 20 a storage that has run once keeps a promise hook on for the whole process, and every
 * promise of every API request then pays for it (README, "Performance": the pull route). The storage is needed only while one of its runs is in flight, so this switches it off
 * now and again whenever its last run settles (the next run switches it back on). Used by an
 * API-only process; Node 24's AsyncContextFrame makes the hook, and this, moot.
 */
export function quietCallContext(connection: { callContextStorage: ContextStorage }): void {
  if (usesAsyncContextFrame()) return;
  const storage = connection.callContextStorage;
  const run = storage.run.bind(storage) as (store: unknown, fn: (...args: unknown[]) => unknown, ...args: unknown[]) => unknown;
  let inflight = 0;
  const settled = () => {
    if (--inflight === 0) storage.disable();
  };
  storage.run = ((store: unknown, fn: (...args: unknown[]) => unknown, ...args: unknown[]) => {
    inflight++;
    let result: unknown;
    try {
      result = run(store, fn, ...args);
    } catch (err) {
      settled();
      throw err;
    }
    if (result instanceof Promise) return result.finally(settled);
    settled();
    return result;
  }) as ContextStorage['run'];
  storage.disable();
}

const SERVING = grpc.health.v1.HealthCheckResponse.ServingStatus.SERVING;
const WORKFLOW_SERVICE = 'temporal.api.workflowservice.v1.WorkflowService';
const GRPC_NOT_FOUND = 5;

/**
 * Whether the frontend serves the workflow service. The frontend says NOT_SERVING for it while it
 * starts and while it drains, and the unnamed check (gRPC's default, SERVING) does not; a front
 * that knows only the unnamed check (NOT_FOUND for the name) is asked that.
 */
export async function workflowServiceServing(connection: Pick<Connection, 'healthService'>): Promise<boolean> {
  try {
    return (await connection.healthService.check({ service: WORKFLOW_SERVICE })).status === SERVING;
  } catch (err) {
    if ((err as { code?: unknown }).code !== GRPC_NOT_FOUND) throw err;
    return (await connection.healthService.check({})).status === SERVING;
  }
}

/**
 * True when a Temporal frontend answers at `address` within `timeoutMs`, serving yet or not (one
 * still starting is there: `npm start` waits for it rather than start a second on its port).
 */
export async function temporalAnswers(address: string, timeoutMs = 2000): Promise<boolean> {
  let connection: Connection | undefined;
  try {
    connection = await Connection.connect({ address, connectTimeout: timeoutMs });
    await connection.healthService.check({});
    return true;
  } catch {
    return false;
  } finally {
    await connection?.close().catch(() => undefined);
  }
}
