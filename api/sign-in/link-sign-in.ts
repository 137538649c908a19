// GET /login/link/:token: a one-time sign-in link (made by POST /api/owners/:id/sign-in-links)
// signs the browser in as its owner and goes to "/". A used, late or unknown link signs nobody in.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Services } from '../services';
import { messagePage, sendPage } from '../dashboard/layout';
import { startSession } from '../dashboard/session';

export async function linkSignInRoutes(app: FastifyInstance, services: Services, limit: (req: FastifyRequest) => Promise<void>) {
  // The token is in the path: keep the URL out of request logs.
  app.get<{ Params: { token: string } }>(
    '/login/link/:token',
    { schema: { hide: true }, logLevel: 'warn', preHandler: limit },
    async (req, reply) => {
      const ownerId = await services.signInLinks.consume(req.params.token);
      if (!ownerId) {
        const page = messagePage({
          title: 'Sign-in link not valid',
          code: 'link_invalid',
          message: 'This sign-in link was already used or has expired (links work once, within 60 seconds). Ask for a new one.',
          links: [{ href: '/login', label: 'Sign in' }],
          signedIn: false,
        });
        return sendPage(reply, page, 410);
      }
      return startSession(services, req, reply, ownerId, '/');
    },
  );
}
