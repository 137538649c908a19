// Item 2, the memory side: every map the pull path fills from outside input has a bound, and what
// happens at the bound is deliberate. The limiter buckets (least recently used go), the lease cache
// and its negative cache (oldest go), the in-flight refreshes (full: 503) and the pull audit
// buffer (full: written at once; while that write runs, further pulls are dropped and logged).
import { randomUUID } from 'node:crypto';
import { createEventBuffer, type PulledLease } from '../../api/services/event-buffer';
import { createRateLimiter, sourceKey } from '../../api/services/rate-limit';
import { createSingleFlight, SingleFlightFullError } from '../../api/services/single-flight';
import { createLeaseCache } from '../../lib/lease-cache';
import { sha256Hex } from '../../lib/secrets';
import { dispatchRow as dispatchRowOf, manualRig } from '../helpers/dispatch-rows';
import { eventually, startHarness, type Harness } from '../helpers/harness';

let h: Harness;
let rigId: string;

beforeAll(async () => {
  h = await startHarness({ worker: false });
  rigId = await manualRig(h, 'bounds');
});
afterAll(() => h?.close());

const dispatchRow = (bearer?: string) => dispatchRowOf(h, rigId, { bearer });

describe('rate limiter buckets', () => {
  it('holds at most maxKeys buckets, dropping the least recently used', () => {
    const limiter = createRateLimiter({ perMinute: 60, burst: 2, maxKeys: 3 });
    const t = 1_000_000;
    for (const key of ['a', 'b', 'c']) limiter.take(key, t);
    limiter.take('a', t + 1); // a is used again: b is now the oldest
    limiter.take('d', t + 2);
    expect(limiter.size).toBe(3);
    expect(limiter.wait('a', t + 3)).toBeGreaterThan(0); // a kept its bucket, emptied by two takes
    expect(limiter.wait('b', t + 3)).toBe(0); // b was forgotten
    expect(limiter.take('b', t + 4)).toBe(0); // and starts again with a full bucket, pushing out c
    expect(limiter.size).toBe(3);
    expect([limiter.take('c', t + 5), limiter.take('c', t + 5)]).toEqual([0, 0]); // c too: two takes from a full bucket
  });

  it('keys IPv6 sources by their /64 and unwraps IPv4-mapped addresses', () => {
    expect(sourceKey('2001:db8:1:2:aaaa::1')).toBe(sourceKey('2001:db8:1:2:ffff:ffff:ffff:ffff'));
    expect(sourceKey('2001:db8:1:2::1')).not.toBe(sourceKey('2001:db8:1:3::1'));
    expect(sourceKey('::ffff:10.1.2.3')).toBe('10.1.2.3');
    expect(sourceKey('10.1.2.3')).toBe('10.1.2.3');
  });
});

describe('in-flight refreshes', () => {
  it('joins a running refresh of the same dispatch and refuses new ones at the bound', async () => {
    const flights = createSingleFlight<string>({ max: 2 });
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let runs = 0;
    const work = () => {
      runs += 1;
      return gate;
    };
    const first = flights.run('d1', work);
    expect(flights.run('d1', work)).toBe(first);
    void flights.run('d2', work);
    expect(() => flights.run('d3', work)).toThrow(SingleFlightFullError);
    expect(flights.size).toBe(2);
    release();
    await first;
    await eventually(async () => flights.size === 0, 1000);
    await flights.run('d3', async () => undefined);
    expect(runs).toBe(2);
  });
});

describe('pull audit buffer', () => {
  it('writes at once when full, and drops (and logs) what arrives while that write runs', async () => {
    const { id } = await dispatchRow();
    const warnings: unknown[] = [];
    const logger = { warn: (obj: unknown) => warnings.push(obj) } as never;
    const buffer = createEventBuffer({ db: h.core.db, logger, flushMs: 3_600_000, maxPending: 3 });
    const lease = (generation: number): PulledLease => ({
      dispatchId: id,
      source: 'integration',
      generation,
      fingerprint: 'sha256:x',
      expiresAtMs: null,
    });
    for (let g = 1; g <= 5; g++) buffer.add(lease(g));
    expect(buffer.pending.leases).toBeLessThanOrEqual(4);
    expect(buffer.pending.dropped).toBe(1);
    await buffer.close();
    const rows = await h.core.db.tokenEvent.findMany({ where: { dispatchId: id, kind: 'pulled' }, orderBy: { generation: 'asc' } });
    expect(rows.map((r) => r.generation)).toEqual([1, 2, 3, 4]);
    expect(warnings).toContainEqual({ dropped: 1 });
  });
});

describe('lease cache', () => {
  it('holds at most maxEntries known and maxUnknown unknown hashes, oldest going first', async () => {
    const cache = createLeaseCache({
      db: h.core.db,
      secrets: h.core.secrets,
      databaseUrl: h.core.config.databaseUrl,
      maxEntries: 2,
      maxUnknown: 3,
    });
    await cache.start();
    try {
      const known = [await dispatchRow(), await dispatchRow(), await dispatchRow()];
      await new Promise((r) => setTimeout(r, 300)); // the inserts' notifications arrive before the misses below
      for (const d of known) expect(await cache.load(d.hash)).not.toBeNull();
      expect(cache.get(known[0].hash)).toBeUndefined(); // evicted
      expect(cache.get(known[1].hash)?.dispatchId).toBe(known[1].id);
      expect(cache.get(known[2].hash)?.dispatchId).toBe(known[2].id);

      const misses = Array.from({ length: 5 }, () => sha256Hex(randomUUID()));
      for (const hash of misses) expect(await cache.load(hash)).toBeNull();
      expect(cache.unknownSize).toBe(3);
      expect(misses.map((m) => cache.isUnknown(m))).toEqual([false, false, true, true, true]);

      // A new dispatch anywhere clears the negative cache (the trigger's notification).
      await dispatchRow();
      await eventually(async () => cache.unknownSize === 0, 3000, 'the negative cache to clear');
    } finally {
      await cache.close();
    }
  });
});
