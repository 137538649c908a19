// Temporal connection helpers shared by the composition root, the dev tooling and tests.
import { Connection } from '@temporalio/client';
import { temporal } from '@temporalio/proto';

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

type ContextStorage = Connection['callContextStorage'];

/**
 * The Temporal client runs every call in an AsyncLocalStorage (the namespace header, deadlines).
 * On Node 20 a storage that has run once keeps a promise hook on for the whole process, and every
 * promise of every API request then pays for it (README, "Performance": the pull route). The storage is needed only while one of its runs is in flight, so this switches it off
 * now and again whenever its last run settles (the next run switches it back on). Used by an
 * API-only process; Node 24's AsyncContextFrame makes the hook, and this, moot.
 */
export function quietCallContext(connection: { callContextStorage: ContextStorage }): void {
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

/** True when a Temporal frontend answers at `address` within `timeoutMs`. */
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
