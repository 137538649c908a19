// Pulls are audited without putting Postgres on the hot path: `pulled` events are buffered and
// written in batches once a second (and on close).
import type { Db } from '../../lib/db';
import type { Logger } from '../../lib/logger';
import type { CredentialSource } from '../../workflows/git-token-types';

export interface BufferedEvent {
  dispatchId: string;
  kind: 'pulled';
  source: CredentialSource;
  generation: number;
  fingerprint: string;
  expiresAt: number | null;
}

export function createEventBuffer(deps: { db: Db; logger?: Logger; flushMs?: number; maxBuffered?: number }) {
  let pending: Array<BufferedEvent & { at: Date }> = [];
  const maxBuffered = deps.maxBuffered ?? 10_000;
  let flushing: Promise<void> = Promise.resolve();

  async function flush(): Promise<void> {
    if (pending.length === 0) return;
    const batch = pending;
    pending = [];
    try {
      await deps.db.tokenEvent.createMany({
        data: batch.map((e) => ({
          dispatchId: e.dispatchId,
          kind: e.kind,
          source: e.source,
          generation: e.generation,
          fingerprint: e.fingerprint,
          expiresAt: e.expiresAt === null ? null : new Date(e.expiresAt),
          at: e.at,
        })),
        skipDuplicates: true,
      });
    } catch (err) {
      deps.logger?.warn({ err: { message: (err as Error).message }, dropped: batch.length }, 'could not write pull events');
    }
  }

  const timer = setInterval(() => {
    flushing = flushing.then(flush);
  }, deps.flushMs ?? 1000);
  timer.unref();

  return {
    add(event: BufferedEvent): void {
      if (pending.length >= maxBuffered) return; // shed audit load rather than memory under a flood
      pending.push({ ...event, at: new Date() });
    },
    /** Writes what is pending now. */
    flush(): Promise<void> {
      flushing = flushing.then(flush);
      return flushing;
    },
    async close(): Promise<void> {
      clearInterval(timer);
      flushing = flushing.then(flush);
      await flushing;
    },
  };
}
