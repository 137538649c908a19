// The pull audit's flush when Postgres does not take a batch: unreachable, a COMMIT whose answer is
// lost, a deadlock with a statement locking dispatches in another order (a delete), a statement it
// refuses for good. A passing failure is tried again by the next flushes (rows that never reached
// a COMMIT merged with the pulls since, rows whose COMMIT went unanswered written at most once),
// within `retryForMs` and `maxPending`; a refusal is dropped. Each step is logged.
import { Client } from 'pg';
import { createEventBuffer, type PulledLease } from '../../api/services/event-buffer';
import { createDb, type Db } from '../../lib/db';
import { dispatchRow as dispatchRowOf, manualRig } from '../helpers/dispatch-rows';
import { eventually, startHarness, type Harness } from '../helpers/harness';
import { PgProxy } from '../helpers/pg-proxy';
import { testDatabaseUrl } from '../helpers/test-env';

let h: Harness;
let rigId: string;
let proxy: PgProxy;
let proxied: Db;
let lockWaiter: Db;

beforeAll(async () => {
  h = await startHarness({ worker: false });
  rigId = await manualRig(h, 'pull-audit');
  proxy = await PgProxy.start(testDatabaseUrl());
  proxied = createDb(proxy.url, { max: 2 });
  const slowDeadlocks = new URL(testDatabaseUrl());
  slowDeadlocks.searchParams.set('options', '-c deadlock_timeout=3s');
  lockWaiter = createDb(slowDeadlocks.toString(), { max: 2 });
});
afterAll(async () => {
  proxy?.up();
  await proxied?.$disconnect();
  await lockWaiter?.$disconnect();
  await proxy?.close();
  await h?.close();
});

const dispatchRow = async () => (await dispatchRowOf(h, rigId, { status: 'active' })).id;

const lease = (dispatchId: string, generation = 1): PulledLease => ({
  dispatchId,
  source: 'integration',
  generation,
  fingerprint: 'sha256:x',
  expiresAtMs: null,
});

/** The dispatches' `pulled` rows as "generation:detail", in id order. */
async function pulled(...ids: string[]): Promise<string[]> {
  const rows = await h.core.db.tokenEvent.findMany({
    where: { dispatchId: { in: ids }, kind: 'pulled' },
    orderBy: { id: 'asc' },
  });
  return rows.map((r) => `${ids.indexOf(r.dispatchId)}:${r.generation}:${r.detail ?? '1 pull'}`);
}

function recordingLogger() {
  type Line = { obj: Record<string, unknown>; msg: string };
  const warnings: Line[] = [];
  const infos: Line[] = [];
  const logger = {
    warn: (obj: Record<string, unknown>, msg: string) => warnings.push({ obj, msg }),
    info: (obj: Record<string, unknown>, msg: string) => infos.push({ obj, msg }),
  };
  return { warnings, infos, logger: logger as never };
}

const tick = () => new Promise((r) => setImmediate(r));

it('keeps the pulls of a write Postgres did not take, merged with the pulls since, and writes them once it is back', async () => {
  const id = await dispatchRow();
  const { warnings, logger } = recordingLogger();
  const buffer = createEventBuffer({ db: proxied, logger, flushMs: 3_600_000 });
  const [first, second] = [lease(id, 1), lease(id, 2)];
  buffer.add(first);
  buffer.add(first);
  proxy.down();
  try {
    const writing = buffer.flush();
    await tick(); // the batch has left the buffer: this pull comes in while its write fails
    buffer.add(first);
    await writing;
    expect(warnings.map((w) => w.msg)).toEqual(['could not write pull events: kept to try again']);
    expect(warnings[0].obj).toMatchObject({ rows: 1, kept: 2, given_up: 0, no_room: 0 });
    expect(buffer.pending.leases).toBe(1);
    buffer.add(second);
    await buffer.flush(); // still away
    expect(warnings[1].obj).toMatchObject({ rows: 2, kept: 4 });
  } finally {
    proxy.up();
  }
  expect(await pulled(id)).toEqual([]);
  await buffer.close();
  expect(await pulled(id)).toEqual(['0:1:3 pulls', '0:2:1 pull']);
  expect(warnings).toHaveLength(2);
});

it('writes the rows of a COMMIT whose answer was lost at most once: Postgres had taken them', async () => {
  const id = await dispatchRow();
  const { warnings, infos, logger } = recordingLogger();
  const buffer = createEventBuffer({ db: proxied, logger, flushMs: 3_600_000 });
  const first = lease(id, 1);
  buffer.add(first);
  buffer.add(first);
  const cut = proxy.cutOn('COMMIT', 'after'); // Postgres commits; the answer never arrives
  try {
    await buffer.flush();
    await cut;
    expect(warnings[0]).toMatchObject({ msg: 'could not write pull events: kept to try again', obj: { rows: 1, kept: 2 } });
    expect(await pulled(id)).toEqual(['0:1:2 pulls']); // it was written
    buffer.add(first); // a later pull: a row of its own
    await buffer.flush(); // Postgres is away now: both kept, apart
    expect(warnings[1].obj).toMatchObject({ rows: 2, kept: 3 });
  } finally {
    proxy.up();
  }
  await buffer.close();
  expect(await pulled(id)).toEqual(['0:1:2 pulls', '0:1:1 pull']);
  expect(warnings).toHaveLength(2);
  expect(infos).toEqual([
    { msg: 'pull events of a write whose COMMIT went unanswered: settled', obj: { rows: 1, written: 0, already_written: 1 } },
  ]);
});

it('writes the rows of a COMMIT that never reached Postgres once it is back, each field as the first try would have', async () => {
  const id = await dispatchRow();
  const { warnings, infos, logger } = recordingLogger();
  const buffer = createEventBuffer({ db: proxied, logger, flushMs: 3_600_000 });
  const expiring = { ...lease(id, 1), expiresAtMs: Date.parse('2026-12-06T10:00:00.123Z') };
  const second = lease(id, 2);
  buffer.add(expiring);
  buffer.add(second);
  buffer.add(second);
  const cut = proxy.cutOn('COMMIT', 'before'); // the connection ends before COMMIT goes out: Postgres rolls back
  try {
    await buffer.flush();
    await cut;
    expect(warnings).toMatchObject([{ msg: 'could not write pull events: kept to try again', obj: { rows: 2, kept: 3 } }]);
  } finally {
    proxy.up();
  }
  expect(await pulled(id)).toEqual([]);
  await buffer.close();
  expect(infos).toMatchObject([{ obj: { rows: 2, written: 2, already_written: 0 } }]);
  const rows = await h.core.db.tokenEvent.findMany({ where: { dispatchId: id }, orderBy: { generation: 'asc' } });
  expect(rows.map((r) => [r.kind, r.source, r.generation, r.fingerprint, r.expiresAt?.toISOString() ?? null, r.detail])).toEqual([
    ['pulled', 'integration', 1, 'sha256:x', '2026-12-06T10:00:00.123Z', null],
    ['pulled', 'integration', 2, 'sha256:x', null, '2 pulls'],
  ]);
});

it('writes a batch larger than one INSERT may carry', async () => {
  const id = await dispatchRow();
  const buffer = createEventBuffer({ db: h.core.db, flushMs: 3_600_000 });
  for (let g = 1; g <= 9_001; g++) buffer.add(lease(id, g));
  await buffer.close();
  const [{ n }] = await h.core.db.$queryRaw<
    Array<{ n: number }>
  >`SELECT count(*)::int AS n FROM token_events WHERE dispatch_id = ${id}::uuid`;
  expect(n).toBe(9_001);
});

it('writes at the next flush the rows of a flush that lost a deadlock to a delete', async () => {
  const [a, b] = (await Promise.all([dispatchRow(), dispatchRow()])).sort();
  const { warnings, logger } = recordingLogger();
  // The buffer's sessions look for a deadlock 3 s into a lock wait: the test closes the cycle before that.
  const buffer = createEventBuffer({ db: lockWaiter, logger, flushMs: 3_600_000 });
  const deleter = new Client({ connectionString: testDatabaseUrl() });
  await deleter.connect();
  try {
    // Another statement holds b and will want a: the flush locks in id order, so it takes a and waits for b.
    await deleter.query('BEGIN');
    await deleter.query(`SET LOCAL deadlock_timeout = '60s'`); // the flush's backend finds the cycle first
    await deleter.query('SELECT id FROM agent_dispatches WHERE id = $1 FOR UPDATE', [b]);
    const [{ pid }] = (await deleter.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows;
    buffer.add(lease(a));
    buffer.add(lease(b));
    const flushed = buffer.flush();
    // Read from outside the deleter's transaction, whose view of pg_stat_activity stays as at its first read.
    const blocked = async () =>
      (await h.core.db.$queryRaw<unknown[]>`SELECT 1 FROM pg_stat_activity WHERE ${pid}::int = ANY(pg_blocking_pids(pid))`).length > 0;
    await eventually(blocked, 10_000, 'the flush to wait for b', 10);
    const deleting = deleter.query('DELETE FROM agent_dispatches WHERE id = $1', [b]);
    const lockA = deleter.query('SELECT id FROM agent_dispatches WHERE id = $1 FOR UPDATE', [a]); // closes the cycle
    await flushed;
    await Promise.all([deleting, lockA]);
    await deleter.query('COMMIT');
    expect(warnings).toHaveLength(1);
    expect(String((warnings[0].obj.err as { message: string }).message)).toMatch(/deadlock/i);
    expect(warnings[0]).toMatchObject({ msg: 'could not write pull events: kept to try again', obj: { rows: 2, kept: 2 } });
  } finally {
    await deleter.query('ROLLBACK').catch(() => undefined);
    await deleter.end();
  }
  expect(await pulled(a, b)).toEqual([]);
  await buffer.close();
  // b was deleted with its events meanwhile: only a's row is written, and nothing more is logged.
  expect(await pulled(a, b)).toEqual(['0:1:1 pull']);
  expect(warnings).toHaveLength(1);
});

it('drops, as before, a write Postgres refuses for good', async () => {
  const id = await dispatchRow();
  const { warnings, logger } = recordingLogger();
  const buffer = createEventBuffer({ db: h.core.db, logger, flushMs: 3_600_000 });
  buffer.add(lease(id, 1));
  buffer.add({ ...lease(id, 2), fingerprint: 'x'.repeat(81) }); // longer than the column
  await buffer.flush();
  expect(warnings).toMatchObject([{ msg: 'could not write pull events: dropped', obj: { rows: 2 } }]);
  expect(buffer.pending.leases).toBe(0);
  await buffer.close();
  expect(await pulled(id)).toEqual([]);
});

it('gives rows up once they have failed for retryForMs, and keeps what it holds within maxPending', async () => {
  const [x, y] = [await dispatchRow(), await dispatchRow()];
  const { warnings, logger } = recordingLogger();
  let clock = 1_000_000;
  const buffer = createEventBuffer({ db: proxied, logger, flushMs: 3_600_000, maxPending: 3, retryForMs: 60_000, now: () => clock });
  const [x1, y1, y2, y3, y4] = [lease(x), lease(y, 1), lease(y, 2), lease(y, 3), lease(y, 4)];
  proxy.down();
  try {
    buffer.add(x1);
    buffer.add(x1);
    await buffer.flush();
    clock += 59_999;
    await buffer.flush(); // not yet
    clock += 1;
    buffer.add(y1);
    await buffer.flush(); // x1's two pulls have failed for retryForMs now: given up; y1 is new
    expect(warnings.map((w) => w.obj)).toMatchObject([
      { rows: 1, kept: 2, given_up: 0, no_room: 0 },
      { rows: 1, kept: 2, given_up: 0, no_room: 0 },
      { rows: 2, kept: 1, given_up: 2, no_room: 0 },
    ]);
    expect(buffer.pending.leases).toBe(1);
    buffer.add(y2);
    buffer.add(y3);
    // Full (3), and the last write failed: no write at once, which would fail too; y4's pull is dropped.
    buffer.add(y4);
    expect(buffer.pending).toEqual({ leases: 3, dropped: 1 });
    await buffer.flush();
    expect(warnings.slice(3)).toMatchObject([
      { msg: 'pull audit buffer was full: pulls not audited', obj: { dropped: 1 } },
      { msg: 'could not write pull events: kept to try again', obj: { rows: 3, kept: 3 } },
    ]);
    await buffer.close(); // still away: the three are lost, and said to be
    expect(warnings.slice(6)).toEqual([{ obj: { rows: 3, pulls: 3 }, msg: 'pull events not written at close' }]);
    expect(buffer.pending.leases).toBe(0);
  } finally {
    proxy.up();
  }
  expect(await pulled(x, y)).toEqual([]);
});
