// Token buckets in memory, bounded: per container token (a misbehaving credential helper in a
// tight loop gets 429s instead of turning into provider traffic) and per source address (failed
// lookups of unknown container tokens).

export interface RateLimiter {
  /** Takes one request's worth; returns 0 when allowed, else milliseconds until one is. */
  take(key: string, now?: number): number;
  /** Milliseconds until `key` may take one, without taking it or creating a bucket (0 for an unknown key). */
  wait(key: string, now?: number): number;
  /** Gives back what `take` took (the request turned out not to count). */
  refund(key: string): void;
  /** Buckets held now (bounded by maxKeys). */
  readonly size: number;
}

interface Bucket {
  tokens: number;
  at: number;
}

export function createRateLimiter(opts: { perMinute: number; burst?: number; maxKeys?: number }): RateLimiter {
  const capacity = opts.burst ?? Math.max(10, Math.ceil(opts.perMinute / 4));
  const perMs = opts.perMinute / 60_000;
  const maxKeys = opts.maxKeys ?? 100_000;
  // Insertion order is use order (a bucket is re-inserted when used): the first key is the least recently used.
  const buckets = new Map<string, Bucket>();
  let lastSweep = Date.now();

  const level = (b: Bucket, now: number) => Math.min(capacity, b.tokens + (now - b.at) * perMs);

  function makeRoom(now: number) {
    // Forget idle buckets first (they would be full again anyway), then the least recently used.
    if (buckets.size >= maxKeys || now - lastSweep > 60_000) {
      for (const [k, b] of buckets) if (level(b, now) >= capacity) buckets.delete(k);
      lastSweep = now;
    }
    while (buckets.size >= maxKeys) buckets.delete(buckets.keys().next().value as string);
  }

  return {
    take(key, now = Date.now()) {
      let b = buckets.get(key);
      if (b) buckets.delete(key);
      else makeRoom(now);
      b = { tokens: b ? level(b, now) : capacity, at: now };
      buckets.set(key, b);
      if (b.tokens >= 1) {
        b.tokens -= 1;
        return 0;
      }
      return Math.ceil((1 - b.tokens) / perMs);
    },
    wait(key, now = Date.now()) {
      const b = buckets.get(key);
      if (!b) return 0;
      const tokens = level(b, now);
      return tokens >= 1 ? 0 : Math.ceil((1 - tokens) / perMs);
    },
    refund(key) {
      const b = buckets.get(key);
      if (b) b.tokens = Math.min(capacity, b.tokens + 1);
    },
    get size() {
      return buckets.size;
    },
  };
}

/**
 * The limiter key of a source address: IPv4 as it is (IPv4-mapped IPv6 unwrapped), IPv6 by its /64,
 * the block one host is normally given, so one host cannot walk through addresses for fresh buckets.
 */
export function sourceKey(ip: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (mapped) return mapped[1];
  if (!ip.includes(':')) return ip;
  const [head, tail = ''] = ip.toLowerCase().split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups = [...left, ...Array<string>(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right];
  return `${groups
    .slice(0, 4)
    .map((g) => g.replace(/^0+(?=.)/, ''))
    .join(':')}::/64`;
}
