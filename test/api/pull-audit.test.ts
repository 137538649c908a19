// The pull audit's flush when Postgres will not take a batch: a restart in progress, or a deadlock
// with a statement locking dispatches in another order (a delete). The rows go back into the
// buffer, merged with the pulls since, and the next flush writes them; rows that keep failing are
// given up after `retryForMs`, and rows put back stay within `maxPending`. Each step is logged.
import { randomUUID } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { Client } from 'pg';
import { createEventBuffer, type PulledLease } from '../../api/services/event-buffer';
import { createDb, type Db } from '../../lib/db';
import { newOwner, startHarness, type Harness } from '../helpers/harness';
import { PgProxy } from '../helpers/pg-proxy';
import { testDatabaseUrl } from '../helpers/test-env';

let h: Harness;
let rigId: string;
let proxy: PgProxy;
let proxied: Db;

beforeAll(async () => {
  h = await startHarness({ worker: false });
  const town = await h.call<{ id: string }>('POST', '/api/towns', { name: 'pull-audit', owner_id: newOwner() });
  const rig = await h.call<{ id: string }>('POST', `/api/towns/${town.body.id}/rigs`, {
    name: 'r',
    git_url: 'https://git.example.com/a/b.git',
  });
  rigId = rig.body.id;
  proxy = await PgProxy.start(testDatabaseUrl());
  proxied = createDb(proxy.url, { max: 2 });
});
afterAll(async () => {
  proxy?.up();
  await proxied?.$disconnect();
  await proxy?.close();
  await h?.close();
});

async function dispatchRow(): Promise<string> {
  const id = randomUUID();
  await h.core.db.agentDispatch.create({
    data: {
      id,
      rigId,
      containerUrl: 'http://127.0.0.1:9',
      containerTokenHash: randomUUID(),
      containerTokenEnc: 'x',
      workflowId: `wf-${id}`,
      status: 'active',
    },
  });
  return id;
}

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
  const warnings: Array<{ obj: Record<string, unknown>; msg: string }> = [];
  return { warnings, logger: { warn: (obj: Record<string, unknown>, msg: string) => warnings.push({ obj, msg }) } as never };
}

it('keeps the pulls of a flush Postgres did not take and writes them, merged with later pulls, once it is back', async () => {
  const id = await dispatchRow();
  const { warnings, logger } = recordingLogger();
  const buffer = createEventBuffer({ db: proxied, logger, flushMs: 3_600_000 });
  const [first, second] = [lease(id, 1), lease(id, 2)];
  buffer.add(first);
  buffer.add(first);
  proxy.down();
  try {
    await buffer.flush();
    expect(warnings.map((w) => w.msg)).toEqual(['could not write pull events: kept for the next flush']);
    expect(warnings[0].obj).toMatchObject({ rows: 1, kept: 2, given_up: 0, dropped: 0 });
    expect(buffer.pending.leases).toBe(1);
    buffer.add(first); // pulled again while Postgres is away: one row, three pulls
    buffer.add(second);
    await buffer.flush(); // still away: kept again
    expect(warnings[1].obj).toMatchObject({ rows: 2, kept: 4 });
  } finally {
    proxy.up();
  }
  expect(await pulled(id)).toEqual([]);
  await buffer.close();
  expect(await pulled(id)).toEqual(['0:1:3 pulls', '0:2:1 pull']);
  expect(warnings).toHaveLength(2);
});

it('writes at the next flush the rows of a flush that lost a deadlock to a delete', async () => {
  const [a, b] = (await Promise.all([dispatchRow(), dispatchRow()])).sort();
  const { warnings, logger } = recordingLogger();
  const buffer = createEventBuffer({ db: h.core.db, logger, flushMs: 3_600_000 });
  const deleter = new Client({ connectionString: testDatabaseUrl() });
  await deleter.connect();
  try {
    // Another statement holds b and will want a: the flush locks in id order, so it takes a and waits for b.
    await deleter.query('BEGIN');
    await deleter.query(`SET LOCAL deadlock_timeout = '60s'`); // the flush's backend finds the cycle first
    await deleter.query('SELECT id FROM agent_dispatches WHERE id = $1 FOR UPDATE', [b]);
    buffer.add(lease(a));
    buffer.add(lease(b));
    const flushed = buffer.flush();
    // The flush's backend looks for a deadlock once, 1 s (deadlock_timeout) after it starts waiting:
    // the cycle must close before that. Read from outside the deleter's transaction, whose view of
    // pg_stat_activity would stay as it was at its first read.
    const waiting = () => h.core.db.$queryRaw<unknown[]>`
      SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%FROM agent_dispatches WHERE id = ANY%'`;
    const deadline = Date.now() + 10_000;
    while ((await waiting()).length === 0) {
      if (Date.now() > deadline) throw new Error('the flush did not wait for b');
      await delay(10);
    }
    const deleting = deleter.query('DELETE FROM agent_dispatches WHERE id = $1', [b]);
    const lockA = deleter.query('SELECT id FROM agent_dispatches WHERE id = $1 FOR UPDATE', [a]); // closes the cycle
    await flushed;
    await Promise.all([deleting, lockA]);
    await deleter.query('COMMIT');
    expect(warnings).toHaveLength(1);
    expect(String((warnings[0].obj.err as { message: string }).message)).toMatch(/deadlock/i);
    expect(warnings[0].obj).toMatchObject({ rows: 2, kept: 2 });
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

it('gives rows up once they have failed for retryForMs, and keeps what it puts back within maxPending', async () => {
  const [x, y] = [await dispatchRow(), await dispatchRow()];
  const { warnings, logger } = recordingLogger();
  const buffer = createEventBuffer({ db: proxied, logger, flushMs: 3_600_000, maxPending: 3, retryForMs: 200 });
  const [x1, y1, y2, y3, y4] = [lease(x), lease(y, 1), lease(y, 2), lease(y, 3), lease(y, 4)];
  const seen = () => warnings.map((w) => w.obj);
  proxy.down();
  try {
    buffer.add(x1);
    buffer.add(x1);
    await buffer.flush();
    await delay(250);
    buffer.add(y1);
    await buffer.flush(); // x1's two pulls have failed for longer than retryForMs: given up; y1 is new
    expect(seen()).toMatchObject([
      { rows: 1, kept: 2, given_up: 0, dropped: 0 },
      { rows: 2, kept: 1, given_up: 2, dropped: 0 },
    ]);
    expect(buffer.pending.leases).toBe(1);
    buffer.add(y2);
    buffer.add(y3);
    buffer.add(y4); // full (3): written at once with all four, which fails; three go back, one does not fit
    await buffer.flush(); // and once more, failing too, with the three kept
    expect(seen().slice(2)).toMatchObject([
      { rows: 4, kept: 3, given_up: 0, dropped: 1 },
      { rows: 3, kept: 3, given_up: 0, dropped: 0 },
    ]);
    expect(buffer.pending.leases).toBe(3);
    await buffer.close(); // still away: the three are lost, and said to be
    expect(warnings.slice(5)).toEqual([{ obj: { rows: 3, pulls: 3 }, msg: 'pull events not written at close' }]);
    expect(buffer.pending.leases).toBe(0);
  } finally {
    proxy.up();
  }
  expect(await pulled(x, y)).toEqual([]);
});
