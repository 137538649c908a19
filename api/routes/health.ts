// Liveness for load balancers and `npm start`: 200 only when Postgres and Temporal both answer.
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Services } from '../services';
import { reachability } from '../../lib/health';

const state = z.enum(['ok', 'down']);
const health = z.object({ postgres: state, temporal: state });
const exposition = z.string().describe('# HELP / # TYPE lines and samples, one per line');

export const healthRoutes: FastifyPluginAsyncZod<{ services: Services }> = async (app, { services }) => {
  const { db } = services.core;

  app.get(
    '/healthz',
    {
      logLevel: 'warn', // probed every few seconds: keep it out of the info log
      schema: { tags: ['operations'], summary: 'Postgres and Temporal reachability', response: { 200: health, 503: health } },
    },
    async (_req, reply) => {
      const body = await reachability(services.core);
      return reply.status(body.postgres === 'ok' && body.temporal === 'ok' ? 200 : 503).send(body);
    },
  );

  app.get(
    '/metrics',
    {
      logLevel: 'warn', // scraped every few seconds
      schema: {
        tags: ['operations'],
        summary: 'Prometheus metrics (repo_connect_*); no auth, so restrict it by network',
        response: { 200: { description: 'Prometheus text exposition format 0.0.4', content: { 'text/plain': { schema: exposition } } } },
      },
    },
    async (_req, reply) => {
      const { metrics } = services.core;
      // Dispatch counts are sampled at scrape time: cheap (indexed) and right across instances.
      const [counts, pending] = await Promise.all([
        db.agentDispatch.groupBy({ by: ['status'], _count: { _all: true } }).catch(() => []),
        services.core.revocations.pending().catch(() => null),
      ]);
      metrics.activeDispatches.reset();
      for (const c of counts) metrics.activeDispatches.set({ status: c.status }, c._count._all);
      // Absent, not 0, when Postgres did not answer: an alert on "above 0" must not read it as all clear.
      metrics.pendingRevocations.reset();
      if (pending !== null) metrics.pendingRevocations.set({ provider: 'github' }, pending);
      return reply.header('content-type', metrics.registry.contentType).send(await metrics.registry.metrics());
    },
  );
};
