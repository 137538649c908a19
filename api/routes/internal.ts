// Container-facing routes, authenticated by the dispatch's container token.
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { Services } from '../services';
import { errorBody } from '../schemas/common';
import { pullParams, pulledToken } from '../schemas/internal';

export const internalRoutes: FastifyPluginAsyncZod<{ services: Services }> = async (app, { services }) => {
  app.post('/rigs/:rig_id/git-token', {
    schema: {
      tags: ['containers'],
      summary: "Pull the dispatch's current git token (refreshed first when it is close to expiry)",
      security: [{ containerBearer: [] }],
      params: pullParams,
      response: { 200: pulledToken, 401: errorBody, 403: errorBody, 404: errorBody, 410: errorBody, 429: errorBody, 502: errorBody, 503: errorBody },
    },
  }, async (req, reply) => {
    const h = req.headers.authorization;
    const token = await services.pull.pull(req.params.rig_id, h?.startsWith('Bearer ') ? h.slice(7).trim() : undefined);
    // Never cached by anything between the service and the container.
    return reply.header('cache-control', 'no-store').send(token);
  });
};
