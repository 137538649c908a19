import { computeRefreshAt, hashFraction, transientBackoffMs } from '../../workflows/refresh-schedule';

const HOUR = 3600_000;

describe('computeRefreshAt', () => {
  it('refreshes margin + jitter before expiry, the jitter bounded and stable per seed', () => {
    const base = { mintedAtMs: 0, expiresAtMs: HOUR, marginMs: 300_000, jitterMaxMs: 60_000 };
    const at = computeRefreshAt({ ...base, seed: 'd1:1' });
    expect(at).toBeLessThanOrEqual(HOUR - 300_000);
    expect(at).toBeGreaterThanOrEqual(HOUR - 360_000);
    expect(computeRefreshAt({ ...base, seed: 'd1:1' })).toBe(at);
  });

  it('spreads a thousand dispatches started together over the jitter window', () => {
    const base = { mintedAtMs: 0, expiresAtMs: HOUR, marginMs: 300_000, jitterMaxMs: 60_000 };
    const seconds = new Set<number>();
    for (let i = 0; i < 1000; i++) seconds.add(Math.floor(computeRefreshAt({ ...base, seed: `dispatch-${i}:1` }) / 1000));
    expect(seconds.size).toBeGreaterThan(50); // 60 one-second slots, nearly all used
    const perSecond = new Map<number, number>();
    for (let i = 0; i < 1000; i++) {
      const s = Math.floor(computeRefreshAt({ ...base, seed: `dispatch-${i}:1` }) / 1000);
      perSecond.set(s, (perSecond.get(s) ?? 0) + 1);
    }
    expect(Math.max(...perSecond.values())).toBeLessThan(40); // no thundering second
  });

  it('refreshes short-lived tokens at half-life instead of spinning', () => {
    const at = computeRefreshAt({ mintedAtMs: 0, expiresAtMs: 8000, marginMs: 300_000, jitterMaxMs: 60_000, seed: 'x' });
    expect(at).toBe(4000);
    expect(computeRefreshAt({ mintedAtMs: 5000, expiresAtMs: 5000, marginMs: 1000, jitterMaxMs: 0, seed: 'x' })).toBe(5000);
  });

  it('caps jitter at a tenth of the lifetime', () => {
    const at = computeRefreshAt({ mintedAtMs: 0, expiresAtMs: 30_000, marginMs: 10_000, jitterMaxMs: 60_000, seed: 'y' });
    expect(at).toBeLessThanOrEqual(20_000);
    expect(at).toBeGreaterThanOrEqual(17_000);
  });
});

describe('hashFraction', () => {
  it('is in [0, 1) and deterministic', () => {
    for (const s of ['', 'a', 'dispatch-1:1', 'x'.repeat(500)]) {
      const f = hashFraction(s);
      expect(f).toBeGreaterThanOrEqual(0);
      expect(f).toBeLessThan(1);
      expect(hashFraction(s)).toBe(f);
    }
    expect(hashFraction('a')).not.toBe(hashFraction('b'));
  });
});

describe('transientBackoffMs', () => {
  it('doubles from 1 s, capped at 30 s and a quarter of the margin', () => {
    expect([1, 2, 3, 4, 5, 6, 7].map((n) => transientBackoffMs(n, 300_000))).toEqual([1000, 2000, 4000, 8000, 16000, 30000, 30000]);
    expect(transientBackoffMs(5, 8000)).toBe(2000);
    expect(transientBackoffMs(1, 1000)).toBe(500);
  });
});
