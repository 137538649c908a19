// Runs in each worker process: revokes the GitLab project tokens of rigs idle for
// GITLAB_PROJECT_TOKEN_IDLE_SECONDS and retries revocations GitLab failed. Several workers may run
// it at once; the store's SKIP LOCKED lets each row be handled by one of them.
import type { Logger } from './logger';
import type { ProjectTokens } from './project-tokens';

export interface ProjectTokenSweeper {
  /** Stops the loop, after the sweep under way (if any) finishes. */
  stop(): Promise<void>;
}

/** Starts sweeping every quarter of the idle time (between 1 s and a minute). */
export function startProjectTokenSweeper(deps: {
  projectTokens: Pick<ProjectTokens, 'sweep'>;
  idleSeconds: number;
  logger: Pick<Logger, 'info' | 'warn'>;
}): ProjectTokenSweeper {
  const everyMs = Math.min(60_000, Math.max(1000, (deps.idleSeconds * 1000) / 4));
  let stopped = false;
  let running: Promise<void> = Promise.resolve();
  let timer: NodeJS.Timeout | undefined;

  const sweep = async () => {
    try {
      const revoked = await deps.projectTokens.sweep(deps.idleSeconds);
      if (revoked > 0) deps.logger.info({ revoked }, 'gitlab project tokens revoked');
    } catch (err) {
      // Postgres or GitLab away: the next round tries again.
      deps.logger.warn({ err: { name: (err as Error)?.name, message: (err as Error)?.message } }, 'project token sweep failed');
    }
  };
  const schedule = () => {
    if (stopped) return;
    timer = setTimeout(() => {
      running = sweep().finally(schedule);
    }, everyMs);
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
