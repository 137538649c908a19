// Town routes: create a town, read it with its owner's integrations, replace its static git tokens.
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { ownerIdFor, ownerNamedIn, touches, owns } from '../auth/access';
import type { Services } from '../services';
import { ownerSecurity as security, errorResponses } from '../schemas/common';
import * as towns from '../schemas/towns';

export const townRoutes: FastifyPluginAsyncZod<{ services: Services }> = async (app, { services }) => {
  app.post(
    '/towns',
    {
      config: ownerNamedIn('body'),
      schema: {
        tags: ['towns'],
        summary: 'Create a town',
        security,
        body: towns.createTownBody,
        response: { 201: towns.town, ...errorResponses },
      },
    },
    async (req, reply) =>
      reply.status(201).send(await services.towns.create({ ...req.body, owner_id: ownerIdFor(req.principal, req.body.owner_id) })),
  );

  app.get(
    '/towns/:town_id',
    {
      config: touches(owns('town')),
      schema: {
        tags: ['towns'],
        summary: "A town with its owner's integrations and its git-auth hosts",
        security,
        params: towns.townParams,
        response: { 200: towns.townDetail, ...errorResponses },
      },
    },
    async (req) => services.towns.detail(req.params.town_id),
  );

  app.put(
    '/towns/:town_id/git-auth',
    {
      config: touches(owns('town')),
      schema: {
        tags: ['towns'],
        summary: "Replace the town's static git tokens (write-only)",
        security,
        params: towns.townParams,
        body: towns.putGitAuthBody,
        response: { 204: z.null().describe('Saved'), ...errorResponses },
      },
    },
    async (req, reply) => {
      await services.towns.putGitAuth(req.params.town_id, req.body);
      return reply.status(204).send(null);
    },
  );
};
