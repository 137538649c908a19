// Container-facing routes, authenticated by the dispatch's container token.
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { bearerOf } from '../auth';
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
    const token = await services.pull.pull(req.params.rig_id, bearerOf(req.headers.authorization));
    // Never cached by anything between the service and the container.
    return reply.header('cache-control', 'no-store').send(token);
  });
};
