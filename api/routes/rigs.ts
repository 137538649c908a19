// Rig routes: create one in a town (through an integration or by a manual git URL), read it with
// its credential source, reconnect or disconnect it, delete it.
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { owns, touches } from '../auth/access';
import type { Services } from '../services';
import { ownerSecurity as security, errorResponses } from '../schemas/common';
import * as towns from '../schemas/towns';
import * as rigs from '../schemas/rigs';

// A rig may be connected to an integration named in the body: it must be the caller's too.
const bodyIntegration = owns('integration', 'platform_integration_id', 'body');

export const rigRoutes: FastifyPluginAsyncZod<{ services: Services }> = async (app, { services }) => {
  app.post(
    '/towns/:town_id/rigs',
    {
      config: touches(owns('town'), bodyIntegration),
      schema: {
        tags: ['rigs'],
        summary: 'Create a rig through an integration (repository id) or by a manual https git URL',
        security,
        params: towns.townParams,
        body: rigs.createRigBody,
        response: { 201: rigs.rig, ...errorResponses },
      },
    },
    async (req, reply) => reply.status(201).send(await services.rigs.create(req.params.town_id, req.body)),
  );

  app.get(
    '/rigs/:rig_id',
    {
      config: touches(owns('rig')),
      schema: {
        tags: ['rigs'],
        summary: 'A rig with its integration and credential source',
        security,
        params: rigs.rigParams,
        response: { 200: rigs.rigDetail, ...errorResponses },
      },
    },
    async (req) => services.rigs.detail(req.params.rig_id),
  );

  app.patch(
    '/rigs/:rig_id',
    {
      config: touches(owns('rig'), bodyIntegration),
      schema: {
        tags: ['rigs'],
        summary: 'Reconnect (integration + repository), disconnect (platform_integration_id: null) or edit a rig',
        security,
        params: rigs.rigParams,
        body: rigs.patchRigBody,
        response: { 200: rigs.rig, ...errorResponses },
      },
    },
    async (req) => services.rigs.update(req.params.rig_id, req.body),
  );

  app.delete(
    '/rigs/:rig_id',
    {
      config: touches(owns('rig')),
      schema: {
        tags: ['rigs'],
        summary: 'Delete a rig with no running dispatch (409 rig_has_running_dispatches otherwise); its GitLab project token is revoked',
        security,
        params: rigs.rigParams,
        response: { 204: z.null().describe('Deleted'), ...errorResponses },
      },
    },
    async (req, reply) => {
      await services.rigs.remove(req.params.rig_id);
      return reply.status(204).send(null);
    },
  );
};
