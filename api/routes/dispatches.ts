// Dispatch routes: start one on a rig (its container token shown once), its status, token ledger
// and stop, and a rig's latest dispatches.
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { owns, touches } from '../auth/access';
import type { Services } from '../services';
import { ownerSecurity as security, errorResponses } from '../schemas/common';
import * as rigs from '../schemas/rigs';
import * as dispatches from '../schemas/dispatches';

export const dispatchRoutes: FastifyPluginAsyncZod<{ services: Services }> = async (app, { services }) => {
  app.get(
    '/rigs/:rig_id/dispatches',
    {
      config: touches(owns('rig')),
      schema: {
        tags: ['dispatches'],
        summary: "A rig's latest dispatches",
        security,
        params: rigs.rigParams,
        response: { 200: dispatches.dispatchList, ...errorResponses },
      },
    },
    async (req) => {
      await services.rigs.getRig(req.params.rig_id);
      return services.dispatches.listForRig(req.params.rig_id);
    },
  );

  app.post(
    '/rigs/:rig_id/dispatches',
    {
      config: touches(owns('rig')),
      schema: {
        tags: ['dispatches'],
        summary: 'Start an agent dispatch: issues the container token (shown once) and starts its token workflow',
        security,
        params: rigs.rigParams,
        body: dispatches.createDispatchBody,
        response: { 201: dispatches.createdDispatch, ...errorResponses },
      },
    },
    async (req, reply) => reply.status(201).send(await services.dispatches.create(req.params.rig_id, req.body)),
  );

  app.get(
    '/dispatches/:dispatch_id',
    {
      config: touches(owns('dispatch')),
      schema: {
        tags: ['dispatches'],
        summary: "A dispatch's token status",
        security,
        params: dispatches.dispatchParams,
        response: { 200: dispatches.dispatch, ...errorResponses },
      },
    },
    async (req) => services.dispatches.get(req.params.dispatch_id),
  );

  app.post(
    '/dispatches/:dispatch_id/stop',
    {
      config: touches(owns('dispatch')),
      schema: {
        tags: ['dispatches'],
        summary: 'Stop a dispatch (its token is revoked where the provider allows)',
        security,
        params: dispatches.dispatchParams,
        response: { 202: z.object({ status: z.literal('stopping') }), ...errorResponses },
      },
    },
    async (req, reply) => {
      await services.dispatches.stop(req.params.dispatch_id);
      return reply.status(202).send({ status: 'stopping' as const });
    },
  );

  app.get(
    '/dispatches/:dispatch_id/events',
    {
      config: touches(owns('dispatch')),
      schema: {
        tags: ['dispatches'],
        summary: "A dispatch's token audit ledger (fingerprints, never tokens), oldest first, a page at a time",
        security,
        params: dispatches.dispatchParams,
        querystring: dispatches.eventsQuery,
        response: { 200: dispatches.eventList, ...errorResponses },
      },
    },
    async (req) => services.dispatches.events(req.params.dispatch_id, req.query),
  );
};
