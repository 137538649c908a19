// Runs in each worker process: revokes the GitLab project tokens of rigs idle for
// GITLAB_PROJECT_TOKEN_IDLE_SECONDS and retries revocations GitLab failed. Several workers may run
// it at once; the store's SKIP LOCKED lets each row be handled by one of them.
import type { Logger } from './logger';
import type { ProjectTokens } from './project-tokens';
import { startSweeper, type Sweeper } from './sweeper';

/** Starts sweeping every quarter of the idle time (between 1 s and a minute). */
export function startProjectTokenSweeper(deps: {
  projectTokens: Pick<ProjectTokens, 'sweep'>;
  idleSeconds: number;
  logger: Pick<Logger, 'info' | 'warn'>;
}): Sweeper {
  return startSweeper({
    everyMs: Math.min(60_000, Math.max(1000, (deps.idleSeconds * 1000) / 4)),
    what: 'project token sweep',
    logger: deps.logger,
    sweep: async () => {
      const revoked = await deps.projectTokens.sweep(deps.idleSeconds);
      if (revoked > 0) deps.logger.info({ revoked }, 'gitlab project tokens revoked');
    },
  });
}
