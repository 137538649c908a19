// A background round a worker process repeats (the GitLab project tokens' sweep, the pending GitHub
// revocations): one round at a time, the next one `everyMs` after the last one ended; a round that
// fails (Postgres or a provider away) is logged and the next one tries again.
import type { Logger } from './logger';

export interface Sweeper {
  /** Stops the loop, after the round under way (if any) finishes. */
  stop(): Promise<void>;
}

export function startSweeper(deps: {
  everyMs: number;
  sweep: () => Promise<void>;
  /** Names the round in the warning a failed one logs. */
  what: string;
  logger: Pick<Logger, 'warn'>;
}): Sweeper {
  let stopped = false;
  let running: Promise<void> = Promise.resolve();
  let timer: NodeJS.Timeout | undefined;

  const round = async () => {
    try {
      await deps.sweep();
    } catch (err) {
      deps.logger.warn({ err: { name: (err as Error)?.name, message: (err as Error)?.message } }, `${deps.what} failed`);
    }
  };
  const schedule = () => {
    if (stopped) return;
    timer = setTimeout(() => {
      running = round().finally(schedule);
    }, deps.everyMs);
    timer.unref();
  };
  schedule();

  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}
