// Item 4 of the security review: GET /api/dispatches/:id/events returned every row, and pulls add
// up to one a second per dispatch, so one busy dispatch made an unbounded response. Now it pages
// (limit ≤ 1000, an opaque cursor), and `pulled` rows are kept for a bounded time and number.
import { randomUUID } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { Client } from 'pg';
import { createEventBuffer } from '../../api/services/event-buffer';
import { PULL_RETENTION, startPullEventSweeper, sweepPullEvents, type PullRetention } from '../../api/services/pull-event-retention';
import { dispatchRow } from '../helpers/dispatch-rows';
import { eventually, newOwner, startHarness, type Harness } from '../helpers/harness';
import { expectError, expectInvalid } from '../helpers/api';
import { testDatabaseUrl } from '../helpers/test-env';

interface Page {
  events: Array<{ kind: string; generation: number; at: string; detail: string | null }>;
  next_cursor: string | null;
}

let h: Harness;
let dispatchId: string;
let workflowId: string;

beforeAll(async () => {
  h = await startHarness({ worker: false });
  const town = await h.call<{ id: string }>('POST', '/api/towns', { name: 'events', owner_id: newOwner() });
  const rig = await h.call<{ id: string }>('POST', `/api/towns/${town.body.id}/rigs`, {
    name: 'r',
    git_url: 'https://git.example.com/a/b.git',
  });
  // No worker runs: the dispatch records nothing of its own, the test writes its ledger.
  const d = await h.call<{ dispatch_id: string; workflow_id: string }>('POST', `/api/rigs/${rig.body.id}/dispatches`, {
    container_url: 'http://127.0.0.1:9',
  });
  dispatchId = d.body.dispatch_id;
  workflowId = d.body.workflow_id;
  await h.core.db.tokenEvent.createMany({
    data: Array.from({ length: 2500 }, (_, i) => ({
      dispatchId,
      kind: i % 10 === 0 ? ('minted' as const) : ('pulled' as const),
      source: 'integration' as const,
      generation: Math.floor(i / 10) + 1,
      detail: `row ${i}`,
      at: new Date(Date.now() - 60_000 + i),
    })),
  });
});
afterAll(async () => {
  await h?.core.temporal.workflow
    .getHandle(workflowId)
    .terminate('test over')
    .catch(() => undefined);
  await h?.close();
});

const page = (query = '') => h.call<Page>('GET', `/api/dispatches/${dispatchId}/events${query}`);

describe('GET /api/dispatches/:id/events', () => {
  it('answers 100 events by default, with a cursor to the rest', async () => {
    const first = await page();
    expect(first.status).toBe(200);
    expect(first.body.events).toHaveLength(100);
    expect(first.body.events[0].detail).toBe('row 0');
    expect(first.body.next_cursor).toEqual(expect.any(String));
  });

  it('pages through everything, oldest first, each row once, with next_cursor null at the end', async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res: { status: number; body: Page } = await page(`?limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      expect(res.status).toBe(200);
      expect(res.body.events.length).toBeLessThanOrEqual(1000);
      seen.push(...res.body.events.map((e) => e.detail!));
      cursor = res.body.next_cursor;
      pages++;
    } while (cursor);
    expect(pages).toBe(3);
    expect(seen).toEqual(Array.from({ length: 2500 }, (_, i) => `row ${i}`));
  });

  it('does not skip rows recorded while a client pages', async () => {
    const first = await page('?limit=1000');
    await h.core.db.tokenEvent.create({
      data: { dispatchId, kind: 'pushed', source: 'integration', generation: 999, detail: 'late', at: new Date(0) },
    });
    let cursor = first.body.next_cursor;
    const rest: string[] = [];
    while (cursor) {
      const res = await page(`?limit=1000&cursor=${encodeURIComponent(cursor)}`);
      rest.push(...res.body.events.map((e) => e.detail!));
      cursor = res.body.next_cursor;
    }
    expect(rest[rest.length - 1]).toBe('late');
    await h.core.db.tokenEvent.deleteMany({ where: { dispatchId, detail: 'late' } });
  });

  it.each([
    ['?limit=1001', 'limit'],
    ['?limit=0', 'limit'],
    ['?limit=ten', 'limit'],
    ['?cursor=garbage', 'cursor'],
    [`?cursor=${Buffer.from('ev1:99999999999999999999').toString('base64url')}`, 'cursor'],
    [`?cursor=${Buffer.from('ev1:12; DROP TABLE token_events').toString('base64url')}`, 'cursor'],
  ])('refuses %s with a 400 naming %s', async (query, field) => {
    expectInvalid(await page(query), field);
  });

  it('is a 404 for an unknown dispatch, cursor or not', async () => {
    expectError(await h.call('GET', `/api/dispatches/${randomUUID()}/events?limit=5`), 404, 'not_found', 'dispatch_id');
    // A cursor this API gave out, for another dispatch's events, reads nothing of them.
    const cursor = (await page('?limit=2')).body.next_cursor!;
    expectError(await h.call('GET', `/api/dispatches/${randomUUID()}/events?limit=5&cursor=${cursor}`), 404, 'not_found', 'dispatch_id');
  });
});

type Lock = 'FOR UPDATE' | 'FOR NO KEY UPDATE';

/** A dispatch row of its own (no workflow), on the suite dispatch's rig. */
async function quietDispatch(status: 'active' | 'stopped' = 'stopped'): Promise<string> {
  const { rigId } = await h.core.db.agentDispatch.findUniqueOrThrow({ where: { id: dispatchId } });
  return (await dispatchRow(h, rigId, { status })).id;
}

// Ids come from one sequence, so without the event order rule (lib/lease-statements.ts) an event
// could take a lower id, commit after a higher one was read, and fall behind a client's cursor.
// Here a transaction plays another writer in flight, as the rule has it (the dispatch locked, its
// event's id drawn, not committed), while the writers under test record events of the same
// dispatch: they must wait for it. A mint locks FOR UPDATE, the other writers FOR NO KEY UPDATE;
// before the rule only the first made them wait (their foreign key check takes FOR KEY SHARE,
// which conflicts with FOR UPDATE alone), so two of those could commit out of id order.
describe('events of one dispatch commit in id order', () => {
  let other: Client;
  beforeAll(async () => {
    other = new Client({ connectionString: testDatabaseUrl() });
    await other.connect();
  });
  afterAll(() => other?.end());

  /** Opens the other writer's transaction: the dispatch locked and its event inserted, not committed. */
  async function writerInFlight(id: string, lock: Lock): Promise<bigint> {
    await other.query('BEGIN');
    await other.query(`SELECT id FROM agent_dispatches WHERE id = $1 ${lock}`, [id]);
    const { rows } = await other.query<{ id: string }>(
      `INSERT INTO token_events (dispatch_id, kind, source, generation, detail) VALUES ($1, 'minted', 'integration', 2, 'in flight') RETURNING id`,
      [id],
    );
    return BigInt(rows[0].id);
  }
  const settledWithin = (p: Promise<unknown>, ms: number) =>
    Promise.race([
      p.then(
        () => true,
        () => true,
      ),
      delay(ms).then(() => false),
    ]);
  const ledger = async (id: string) =>
    (await h.call<Page>('GET', `/api/dispatches/${id}/events?limit=1000`)).body.events.map((e) => e.detail);
  const ids = async (id: string) =>
    (await h.core.db.tokenEvent.findMany({ where: { dispatchId: id }, orderBy: { id: 'asc' }, select: { id: true, detail: true } })).map(
      (r) => [r.detail, r.id] as const,
    );

  /** While the other writer is open the one under test waits and no page shows its row; after the commit both follow in id order. */
  async function expectWaitsForTheOther(lock: Lock, write: (id: string) => Promise<unknown>, detail: string | null) {
    const id = await quietDispatch('active');
    await h.core.leases.recordEvent(id, 'minted', { source: 'integration', generation: 1, detail: 'before' });
    const otherId = await writerInFlight(id, lock);
    let writing: Promise<unknown> | undefined;
    try {
      writing = write(id);
      expect(await settledWithin(writing, 500)).toBe(false);
      // A page read now would end past the other writer's id if the one under test had committed.
      expect(await ledger(id)).toEqual(['before']);
    } finally {
      await other.query('COMMIT');
    }
    await writing;
    const rows = await ids(id);
    expect(rows.map(([d]) => d)).toEqual(['before', 'in flight', detail]);
    expect(rows[2][1]).toBeGreaterThan(otherId);
    expect(await ledger(id)).toEqual(['before', 'in flight', detail]);
  }

  const holders: Array<[string, Lock]> = [
    ['another recorded event or pull flush', 'FOR NO KEY UPDATE'],
    ['a mint', 'FOR UPDATE'],
  ];

  it.each(holders)('a recorded event (pushed, push_failed, refresh_failed, revoked) waits for %s in flight', async (_, lock) => {
    const record = (id: string) => h.core.leases.recordEvent(id, 'pushed', { source: 'integration', generation: 2, detail: 'pushed' });
    await expectWaitsForTheOther(lock, record, 'pushed');
  });

  it.each(holders)("the pull audit's flush waits for %s in flight", async (_, lock) => {
    const buffer = createEventBuffer({ db: h.core.db, flushMs: 3_600_000 });
    const flush = (id: string) => {
      buffer.add({ dispatchId: id, source: 'integration', generation: 2, fingerprint: 'fp', expiresAtMs: null });
      return buffer.flush();
    };
    try {
      await expectWaitsForTheOther(lock, flush, null);
    } finally {
      await buffer.close();
    }
  });

  it("a flush leaves out a dispatch deleted meanwhile and writes the others' rows", async () => {
    const [kept, gone] = [await quietDispatch('active'), await quietDispatch('active')];
    const buffer = createEventBuffer({ db: h.core.db, flushMs: 3_600_000 });
    buffer.add({ dispatchId: gone, source: 'integration', generation: 1, fingerprint: 'fp', expiresAtMs: null });
    buffer.add({ dispatchId: kept, source: 'integration', generation: 1, fingerprint: 'fp', expiresAtMs: null });
    await h.core.db.agentDispatch.delete({ where: { id: gone } });
    await buffer.close();
    expect(await h.core.db.tokenEvent.count({ where: { dispatchId: kept, kind: 'pulled' } })).toBe(1);
    expect(await h.core.db.tokenEvent.count({ where: { dispatchId: gone } })).toBe(0);
  });

  it('records nothing for a dispatch that does not exist', async () => {
    const id = randomUUID();
    await h.core.leases.recordEvent(id, 'pushed', { source: 'integration', generation: 1 });
    expect(await h.core.db.tokenEvent.count({ where: { dispatchId: id } })).toBe(0);
  });
});

describe('retention of pulled rows', () => {
  const retention: PullRetention = { ...PULL_RETENTION, maxAgeMs: 24 * 3600_000, maxPerDispatch: 200 };

  async function ledger(id: string) {
    const rows = await h.core.db.tokenEvent.findMany({
      where: { dispatchId: id },
      orderBy: { id: 'asc' },
      select: { kind: true, detail: true },
    });
    return { pulled: rows.filter((r) => r.kind === 'pulled').map((r) => r.detail), other: rows.filter((r) => r.kind !== 'pulled').length };
  }

  async function seeded(old: number, recent: number) {
    const id = await quietDispatch();
    const day = 24 * 3600_000;
    await h.core.db.tokenEvent.createMany({
      data: [
        ...Array.from({ length: old }, (_, i) => ({
          kind: 'pulled' as const,
          detail: `old ${i}`,
          at: new Date(Date.now() - 40 * day + i),
        })),
        { kind: 'minted' as const, detail: 'old mint', at: new Date(Date.now() - 40 * day) },
        ...Array.from({ length: recent }, (_, i) => ({
          kind: 'pulled' as const,
          detail: `recent ${i}`,
          at: new Date(Date.now() - 1000 + i),
        })),
      ].map((e) => ({ ...e, dispatchId: id, source: 'integration' as const, generation: 1 })),
    });
    return id;
  }

  it('deletes pulled rows past the age limit and past the per-dispatch cap, and nothing else', async () => {
    const id = await seeded(30, 260);
    await sweepPullEvents(h.core.db, { retention, since: new Date(Date.now() - 3600_000) });
    const after = await ledger(id);
    expect(after.other).toBe(1); // the old mint stays: only pulls are swept
    expect(after.pulled).toEqual(Array.from({ length: 200 }, (_, i) => `recent ${i + 60}`)); // the newest 200
  });

  it('deletes at most its budget per sweep', async () => {
    const id = await seeded(25, 0);
    const deleted = await sweepPullEvents(h.core.db, { retention: { ...retention, batchSize: 4, maxBatches: 3 }, since: new Date() });
    expect(deleted.old).toBe(12);
    expect((await ledger(id)).pulled).toHaveLength(13);
  });

  it('runs periodically in the API process', async () => {
    const id = await seeded(5, 210);
    const sweeper = startPullEventSweeper({ db: h.core.db, intervalMs: 50, retention });
    try {
      await eventually(async () => (await ledger(id)).pulled.length === 200, 10_000, 'the sweep');
      expect((await ledger(id)).pulled[0]).toBe('recent 10');
    } finally {
      await sweeper.stop();
    }
  });
});
