// Container routes, authenticated by the dispatch's container token: the pull service resolves it
// (one lookup on the hot path), so this group has no auth hook of its own.
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { bearerOf } from '../auth/principal';
import { badRequest } from '../errors';
import type { Services } from '../services';
import { errorBody } from '../schemas/common';
import { HELD_GENERATION, pullHeaders, pullParams, pulledToken } from '../schemas/internal';

/** Where the container routes are mounted, and the pull route's full pattern (its metrics label). */
export const CONTAINER_PREFIX = '/api/internal';
export const PULL_ROUTE = `${CONTAINER_PREFIX}/rigs/:rig_id/git-token`;

export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Optional request header: the generation the container already holds (from a push or an earlier
 * pull). An instance whose cached copy is older reads Postgres instead of answering with it.
 */
export const HELD_GENERATION_HEADER = 'repo-connect-generation';

/** The header's generation: 0 when absent, undefined when malformed (the route answers that 400). */
export function parseHeldGeneration(value: string | string[] | undefined): number | undefined {
  if (value === undefined) return 0;
  const n = typeof value === 'string' && HELD_GENERATION.test(value) ? Number(value) : NaN;
  return Number.isSafeInteger(n) ? n : undefined;
}

function heldGeneration(value: string | string[] | undefined): number {
  const n = parseHeldGeneration(value);
  if (n === undefined) {
    throw badRequest('Repo-Connect-Generation', 'Repo-Connect-Generation: must be one positive integer (the generation held)');
  }
  return n;
}

export const containerRoutes: FastifyPluginAsyncZod<{ services: Services }> = async (app, { services }) => {
  app.post(
    '/rigs/:rig_id/git-token',
    {
      schema: {
        tags: ['containers'],
        summary: "Pull the dispatch's current git token (refreshed first when it is close to expiry)",
        security: [{ containerBearer: [] }],
        params: pullParams,
        headers: pullHeaders,
        response: {
          200: pulledToken,
          401: errorBody,
          403: errorBody,
          404: errorBody,
          410: errorBody,
          429: errorBody,
          502: errorBody,
          503: errorBody,
        },
      },
      // Same rules as the zod schemas (documented above), checked without zod's per-call overhead;
      // the held generation is read (and refused when malformed) by the handler.
      validatorCompiler: ({ httpPart }) =>
        httpPart === 'headers'
          ? (headers) => ({ value: headers })
          : (params) => {
              const rigId = (params as { rig_id?: string }).rig_id ?? '';
              return UUID.test(rigId)
                ? { value: { ...(params as object), rig_id: rigId.toLowerCase() } }
                : { error: badRequest('rig_id', 'rig_id: must be a UUID') };
            },
    },
    async (req, reply) => {
      // The hot path: the body is serialised once per lease by the cache (exactly the four fields of
      // the schema), so it goes out as prepared text instead of through zod on every pull. The
      // schema still documents the route; errors go through the shared handler.
      // req.ip is the peer's address: the app trusts no proxy headers (trustProxy: false).
      const held = heldGeneration(req.headers[HELD_GENERATION_HEADER]);
      const body = await services.pull.pull(req.params.rig_id, bearerOf(req.headers.authorization), req.ip, held);
      // Never cached by anything between the service and the container.
      return reply
        .header('cache-control', 'no-store')
        .type('application/json; charset=utf-8')
        .send(body as never);
    },
  );
};
