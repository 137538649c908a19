// Integration routes: register a GitHub App installation or a GitLab grant, list an owner's, and
// their repositories (cached; fetched from the provider on demand).
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { ownerIdFor, ownerNamedIn, owns, touches } from '../auth/access';
import type { Services } from '../services';
import { ownerSecurity as security, errorResponses, integration } from '../schemas/common';
import * as integrations from '../schemas/integrations';

export const integrationRoutes: FastifyPluginAsyncZod<{ services: Services }> = async (app, { services }) => {
  app.post(
    '/integrations',
    {
      config: ownerNamedIn('body'),
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
      const owner_id = ownerIdFor(req.principal, req.body.owner_id);
      // An owner registers only an installation GitHub lists for their linked account; admin is trusted.
      if (req.principal?.kind === 'owner' && req.body.provider === 'github') {
        await services.installationCheck.verify({
          ownerId: owner_id,
          appType: req.body.app_type,
          installationId: req.body.installation_id,
        });
      }
      const result =
        req.body.provider === 'github'
          ? await services.integrations.registerGithub({ ...req.body, owner_id })
          : await services.integrations.registerGitlab({ ...req.body, owner_id });
      // 201 whether the row is new or re-registered (the contract's answer); the id tells them apart.
      return reply.status(201).send(result.integration);
    },
  );

  app.get(
    '/integrations',
    {
      config: ownerNamedIn('query'),
      schema: {
        tags: ['integrations'],
        summary: "An owner's integrations with their status",
        security,
        querystring: integrations.listQuery,
        response: { 200: integrations.integrationList, ...errorResponses },
      },
    },
    async (req) => services.integrations.list(ownerIdFor(req.principal, req.query.owner_id)),
  );

  app.get(
    '/integrations/:integration_id/repositories',
    {
      config: touches(owns('integration')),
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
};
