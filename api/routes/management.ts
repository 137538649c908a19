// Management routes (`Authorization: Bearer $ADMIN_API_TOKEN` or the dashboard session).
// Handlers are thin: parse (zod, by the type provider), call a service, shape the reply.
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { requireAdmin } from '../auth';
import { AppError } from '../errors';
import type { Services } from '../services';
import { errorResponses } from '../schemas/common';
import { integration } from '../schemas/common';
import * as towns from '../schemas/towns';
import * as integrations from '../schemas/integrations';
import * as rigs from '../schemas/rigs';
import * as dispatches from '../schemas/dispatches';

const security = [{ adminBearer: [] }];

export const managementRoutes: FastifyPluginAsyncZod<{ services: Services }> = async (app, { services }) => {
  app.addHook('onRequest', requireAdmin(services.config));
  // JSON only: Fastify would otherwise parse text/plain and form bodies into something that fails
  // validation with a confusing message (or, for forms, passes it).
  app.addHook('preParsing', async (req) => {
    const hasBody = req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
    const type = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
    if (hasBody && type !== 'application/json') {
      throw new AppError(415, 'unsupported_media_type', 'request bodies must be JSON (Content-Type: application/json)');
    }
  });

  app.post(
    '/towns',
    {
      schema: {
        tags: ['towns'],
        summary: 'Create a town',
        security,
        body: towns.createTownBody,
        response: { 201: towns.town, ...errorResponses },
      },
    },
    async (req, reply) => reply.status(201).send(await services.towns.create(req.body)),
  );

  app.get(
    '/towns/:town_id',
    {
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

  app.post(
    '/integrations',
    {
      schema: {
        tags: ['integrations'],
        summary: 'Register a GitHub App installation or a GitLab OAuth grant',
        description:
          'Creates the integration, or updates the one already registered for the same installation / GitLab user (same id); 201 either way.',
        security,
        body: integrations.registerBody,
        response: { 201: integration, ...errorResponses },
      },
    },
    async (req, reply) => {
      const result =
        req.body.provider === 'github'
          ? await services.integrations.registerGithub(req.body)
          : await services.integrations.registerGitlab(req.body);
      // 201 whether the row is new or re-registered (the contract's answer); the id tells them apart.
      return reply.status(201).send(result.integration);
    },
  );

  app.get(
    '/integrations',
    {
      schema: {
        tags: ['integrations'],
        summary: "An owner's integrations with their status",
        security,
        querystring: integrations.listQuery,
        response: { 200: integrations.integrationList, ...errorResponses },
      },
    },
    async (req) => services.integrations.list(req.query.owner_id),
  );

  app.get(
    '/integrations/:integration_id/repositories',
    {
      schema: {
        tags: ['integrations'],
        summary: "The integration's repositories (cached; refresh=true fetches from the provider)",
        security,
        params: integrations.integrationParams,
        querystring: integrations.repositoriesQuery,
        response: { 200: integrations.repositoryList, ...errorResponses },
      },
    },
    async (req) => services.integrations.repositories(req.params.integration_id, req.query),
  );

  app.post(
    '/towns/:town_id/rigs',
    {
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

  app.get(
    '/rigs/:rig_id/dispatches',
    {
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
      schema: {
        tags: ['dispatches'],
        summary: "A dispatch's token audit ledger (fingerprints, never tokens)",
        security,
        params: dispatches.dispatchParams,
        response: { 200: dispatches.eventList, ...errorResponses },
      },
    },
    async (req) => services.dispatches.events(req.params.dispatch_id),
  );
};
