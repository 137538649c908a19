// quietCallContext: the Temporal client's call-context storage is on only while one of its runs is
// in flight (so no promise hook stays on for the API's requests), and a run in flight keeps it.
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Connection } from '@temporalio/client';
import { quietCallContext, usesAsyncContextFrame } from '../../lib/temporal';

type Store = { deadline?: number };

/** The part of a Temporal Connection this touches, with a real AsyncLocalStorage used the same way. */
function fakeConnection() {
  const storage = new AsyncLocalStorage<Store>();
  const conn = {
    callContextStorage: storage as unknown as Connection['callContextStorage'],
    withDeadline: <T>(deadline: number, fn: () => Promise<T>): Promise<T> => storage.run({ deadline }, fn),
  };
  return { storage, conn };
}

function gate() {
  let open!: () => void;
  const opened = new Promise<void>((r) => (open = r));
  return { open, opened };
}

/** What a continuation created inside a finished run sees once it runs. */
async function seenAfterTheRun(
  conn: ReturnType<typeof fakeConnection>['conn'],
  storage: AsyncLocalStorage<Store>,
): Promise<Store | undefined> {
  const later = gate();
  let seen: Store | undefined;
  await conn.withDeadline(Date.now() + 1_000, async () => {
    void later.opened.then(() => (seen = storage.getStore()));
  });
  later.open();
  await new Promise((r) => setImmediate(r));
  return seen;
}

it('leaves the storage on after a run without it (the control for the tests below)', async () => {
  const { storage, conn } = fakeConnection();
  expect((await seenAfterTheRun(conn, storage))?.deadline).toBeDefined();
});

// On AsyncContextFrame (Node 24) there is no hook to switch off, and quietCallContext leaves the storage alone.
const onHooks = usesAsyncContextFrame() ? it.skip : it;

it('tells which AsyncLocalStorage the Node version and flags give', () => {
  expect(usesAsyncContextFrame('20.20.2', [])).toBe(false);
  expect(usesAsyncContextFrame('22.23.5', ['--experimental-async-context-frame'])).toBe(true);
  expect(usesAsyncContextFrame('24.22.3', [])).toBe(true);
  expect(usesAsyncContextFrame('24.22.3', ['--no-async-context-frame'])).toBe(false);
  expect(usesAsyncContextFrame('24.22.3', ['--no_async_context_frame'])).toBe(false);
  // The last one wins (NODE_OPTIONS come before the command line).
  expect(usesAsyncContextFrame('24.22.3', ['--no-async-context-frame', '--async-context-frame'])).toBe(true);
  expect(usesAsyncContextFrame('22.23.5', ['--experimental-async-context-frame', '--no-experimental-async-context-frame'])).toBe(false);
});

(usesAsyncContextFrame() ? it : it.skip)('leaves the storage alone where AsyncLocalStorage runs on AsyncContextFrame', () => {
  const { storage, conn } = fakeConnection();
  const run = storage.run;
  quietCallContext(conn);
  expect(storage.run).toBe(run);
});

onHooks('switches the storage off once the last run settles, and on again for the next', async () => {
  const { storage, conn } = fakeConnection();
  quietCallContext(conn);
  expect(await seenAfterTheRun(conn, storage)).toBeUndefined();
  // The next run has its store as before.
  expect(await conn.withDeadline(42, async () => storage.getStore()?.deadline)).toBe(42);
  // A run that throws settles too.
  await expect(conn.withDeadline(1, async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
  expect(await seenAfterTheRun(conn, storage)).toBeUndefined();
});

onHooks('keeps the store of a run in flight while another, nested or not, settles', async () => {
  const { storage, conn } = fakeConnection();
  quietCallContext(conn);
  const a = gate();
  let seenByA: Store | undefined;
  const first = conn.withDeadline(5_000, async () => {
    await conn.withDeadline(6_000, async () => undefined); // nested (as withMetadata inside withDeadline)
    await a.opened;
    seenByA = storage.getStore();
  });
  await conn.withDeadline(1_000, async () => undefined);
  a.open();
  await first;
  expect(seenByA?.deadline).toBe(5_000);
});
