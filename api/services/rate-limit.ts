// Per-container-token token bucket, in memory. A misbehaving container (a credential helper in a
// tight loop) gets 429s instead of turning into provider traffic.

export interface RateLimiter {
  /** Takes one request's worth; returns 0 when allowed, else milliseconds until one is. */
  take(key: string, now?: number): number;
}

export function createRateLimiter(opts: { perMinute: number; burst?: number }): RateLimiter {
  const capacity = opts.burst ?? Math.max(10, Math.ceil(opts.perMinute / 4));
  const perMs = opts.perMinute / 60_000;
  const buckets = new Map<string, { tokens: number; at: number }>();
  let lastSweep = Date.now();

  return {
    take(key, now = Date.now()) {
      if (now - lastSweep > 60_000) {
        // Forget idle buckets (they would be full again anyway).
        for (const [k, b] of buckets) if (b.tokens + (now - b.at) * perMs >= capacity) buckets.delete(k);
        lastSweep = now;
      }
      const b = buckets.get(key) ?? { tokens: capacity, at: now };
      b.tokens = Math.min(capacity, b.tokens + (now - b.at) * perMs);
      b.at = now;
      buckets.set(key, b);
      if (b.tokens >= 1) {
        b.tokens -= 1;
        return 0;
      }
      return Math.ceil((1 - b.tokens) / perMs);
    },
  };
}
