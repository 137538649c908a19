// One promise per key at a time, with a bound on how many keys may be in flight at once: a burst
// of stale pulls across many dispatches cannot grow the map (or the work behind it) without limit.

/** The map is full: the caller should answer 503 and let the client retry. */
export class SingleFlightFullError extends Error {
  constructor(readonly max: number) {
    super(`more than ${max} operations in flight`);
    this.name = 'SingleFlightFullError';
  }
}

export function createSingleFlight<K>(opts: { max: number }) {
  const inflight = new Map<K, Promise<void>>();
  return {
    /** Joins the run for `key`, or starts `fn` when there is none; throws SingleFlightFullError at the bound. */
    run(key: K, fn: () => Promise<void>): Promise<void> {
      let p = inflight.get(key);
      if (p) return p;
      if (inflight.size >= opts.max) throw new SingleFlightFullError(opts.max);
      p = fn().finally(() => inflight.delete(key));
      inflight.set(key, p);
      return p;
    },
    get size() {
      return inflight.size;
    },
  };
}
