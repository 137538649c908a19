// Pure timing rules of the token loop, kept apart so they can be unit-tested without Temporal.

/** FNV-1a 32-bit hash of `text` as a fraction in [0, 1): deterministic, well spread. */
export function hashFraction(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h / 0x1_0000_0000;
}

export interface RefreshScheduleInput {
  /** When the current token was minted (workflow time, ms). */
  mintedAtMs: number;
  expiresAtMs: number;
  marginMs: number;
  jitterMaxMs: number;
  /** Spreads dispatches: the same seed always gets the same jitter. */
  seed: string;
}

/**
 * When to refresh: `margin + jitter` before expiry, the jitter spread evenly by `seed` so that
 * dispatches started together refresh apart. Short-lived tokens (lifetime under twice the lead)
 * refresh at half-life instead, so the loop can never spin on a token it just minted.
 */
export function computeRefreshAt(input: RefreshScheduleInput): number {
  const lifetime = Math.max(0, input.expiresAtMs - input.mintedAtMs);
  const jitter = Math.min(input.jitterMaxMs, lifetime * 0.1) * hashFraction(input.seed);
  const lead = Math.min(input.marginMs + jitter, lifetime / 2);
  return input.expiresAtMs - lead;
}

/**
 * Backoff before the next attempt after `failures` consecutive transient failures: doubling from
 * 1 s, capped at 30 s and at a quarter of the margin, so several attempts fit before expiry.
 */
export function transientBackoffMs(failures: number, marginMs: number): number {
  const doubling = 1000 * 2 ** Math.max(0, failures - 1);
  return Math.max(500, Math.min(doubling, 30_000, marginMs / 4));
}
