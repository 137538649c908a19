// Owner routes: an owner's API tokens (admin or that owner), one-time sign-in links (admin), and
// the owner's dashboard sessions with "sign out everywhere".
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { owns, touches } from '../auth/access';
import { notFound } from '../errors';
import type { Services } from '../services';
import { errorResponses, ownerSecurity as security } from '../schemas/common';
import * as owners from '../schemas/owners';

const tags = ['owners'];

export const ownerRoutes: FastifyPluginAsyncZod<{ services: Services }> = async (app, { services }) => {
  const { ownerTokens, sessions, signInLinks } = services;

  app.post(
    '/owners/:owner_id/tokens',
    {
      config: touches(owns('owner')),
      schema: {
        tags,
        summary: 'Create an owner API token (rco_…, shown once)',
        security,
        params: owners.ownerParams,
        body: owners.createTokenBody,
        response: { 201: owners.createdToken, ...errorResponses },
      },
    },
    async (req, reply) => {
      await services.owners.ensure(req.params.owner_id);
      return reply.status(201).send(await ownerTokens.create(req.params.owner_id, req.body.name));
    },
  );

  app.get(
    '/owners/:owner_id/tokens',
    {
      config: touches(owns('owner')),
      schema: {
        tags,
        summary: "The owner's API tokens (never the secret)",
        security,
        params: owners.ownerParams,
        response: { 200: owners.tokenList, ...errorResponses },
      },
    },
    async (req) => ownerTokens.list(req.params.owner_id),
  );

  app.delete(
    '/owners/:owner_id/tokens/:token_id',
    {
      config: touches(owns('owner')),
      schema: {
        tags,
        summary: 'Delete an owner API token: it answers 401 from the next request on',
        security,
        params: owners.tokenParams,
        response: { 204: z.null().describe('Deleted'), ...errorResponses },
      },
    },
    async (req, reply) => {
      await ownerTokens.delete(req.params.owner_id, req.params.token_id);
      return reply.status(204).send(null);
    },
  );

  app.post(
    '/owners/:owner_id/sign-in-links',
    {
      config: { access: { owns: [owns('owner')], adminOnly: true } },
      schema: {
        tags,
        summary: 'A one-time sign-in URL for the owner, valid 60 seconds (admin only)',
        security: [{ adminBearer: [] }],
        params: owners.ownerParams,
        response: { 201: owners.signInLink, ...errorResponses },
      },
    },
    async (req, reply) => {
      await services.owners.ensure(req.params.owner_id);
      return reply.status(201).send(await signInLinks.create(req.params.owner_id));
    },
  );

  app.get(
    '/owners/:owner_id/sessions',
    {
      config: touches(owns('owner')),
      schema: {
        tags,
        summary: "The owner's dashboard sessions",
        security,
        params: owners.ownerParams,
        response: { 200: owners.sessionList, ...errorResponses },
      },
    },
    async (req) => {
      const rows = await sessions.listForOwner(req.params.owner_id);
      return {
        sessions: rows.map((s) => ({
          id: s.id,
          created_at: s.createdAt.toISOString(),
          last_seen_at: s.lastSeenAt.toISOString(),
          expires_at: s.expiresAt.toISOString(),
          user_agent: s.userAgent,
          current: s.id === req.principal?.sessionId,
        })),
      };
    },
  );

  app.delete(
    '/owners/:owner_id/sessions/:session_id',
    {
      config: touches(owns('owner')),
      schema: {
        tags,
        summary: 'Sign out one session of the owner',
        security,
        params: owners.sessionParams,
        response: { 204: z.null().describe('Signed out'), ...errorResponses },
      },
    },
    async (req, reply) => {
      if (!(await sessions.endForOwner(req.params.owner_id, req.params.session_id))) throw notFound('session', 'session_id');
      return reply.status(204).send(null);
    },
  );

  app.delete(
    '/owners/:owner_id/sessions',
    {
      config: touches(owns('owner')),
      schema: {
        tags,
        summary: 'Sign out everywhere: ends every session of the owner',
        security,
        params: owners.ownerParams,
        response: { 204: z.null().describe('Signed out everywhere'), ...errorResponses },
      },
    },
    async (req, reply) => {
      await sessions.endAllForOwner(req.params.owner_id);
      return reply.status(204).send(null);
    },
  );
};
