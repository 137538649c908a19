// POST /webhooks/github: no admin auth; authenticity comes from X-Hub-Signature-256 over the raw
// body (the group's hook, api/auth/hooks.ts), and each X-GitHub-Delivery id is processed once.
// Registered in its own plugin scope so the raw-body parser applies to this route only.
import { createHash } from 'node:crypto';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { badRequest, conflict } from '../errors';
import type { Services } from '../services';
import { errorBody } from '../schemas/common';
import { WebhookPayloadError } from '../services/github-webhooks';
import { parseWebhookPayload } from './github-signature';

// Read before the signature can be checked, so no larger than installation events need: they list
// the installation's repositories (sizes measured in the README's webhooks section). A larger
// delivery gets 413, and the next mint asks GitHub itself.
export const WEBHOOK_BODY_LIMIT = 3 * 1024 * 1024;

const webhookResult = z.object({
  result: z.enum(['pong', 'status_changed', 'unchanged', 'repositories_updated', 'user_tokens_forgotten', 'ignored']),
  detail: z.string(),
  integration_id: z.string().optional(),
  integration_status: z.enum(['active', 'suspended', 'deleted', 'reconnect_required']).optional(),
});

const header = (value: string | string[] | undefined) => (typeof value === 'string' ? value : undefined);

export const githubWebhookRoutes: FastifyPluginAsyncZod<{ services: Services }> = async (app, { services }) => {
  const { webhooks } = services;
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: WEBHOOK_BODY_LIMIT }, (_req, body, done) => done(null, body));

  app.post(
    '/webhooks/github',
    {
      bodyLimit: WEBHOOK_BODY_LIMIT,
      schema: {
        tags: ['webhooks'],
        summary: 'GitHub App webhooks (installation, installation_repositories, github_app_authorization, ping)',
        description:
          'Verified with X-Hub-Signature-256 (GITHUB_WEBHOOK_SECRET) over the raw body; a delivery id or payload seen before is refused with 409 ' +
          '(github_app_authorization: a delivery id only, since GitHub sends the same body for each app and each revocation). ' +
          'installation deleted/suspend/unsuspend set the integration status and make its running dispatches mint again; ' +
          'installation_repositories updates the cached repository list; github_app_authorization revoked forgets the standard app user token pair ' +
          'kept for that person once GitHub rejects it. Unknown installations and other events: 202.',
        response: {
          200: webhookResult,
          202: webhookResult,
          400: errorBody,
          401: errorBody,
          409: errorBody,
          413: errorBody,
          503: errorBody,
        },
      },
    },
    async (req, reply) => {
      const raw = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0); // its signature checked by the group's hook
      const event = header(req.headers['x-github-event']);
      const delivery = header(req.headers['x-github-delivery']);
      if (!event || !/^[a-z_]{1,100}$/.test(event)) throw badRequest('x-github-event', 'X-GitHub-Event: is missing or malformed');
      if (!delivery || !/^[A-Za-z0-9-]{1,100}$/.test(delivery))
        throw badRequest('x-github-delivery', 'X-GitHub-Delivery: is missing or malformed');
      let payload: unknown;
      try {
        payload = parseWebhookPayload(raw, req.headers['content-type']);
      } catch {
        throw badRequest('body', 'body: is not a JSON webhook payload');
      }
      // GitHub signs neither a timestamp nor the delivery id: a replay is recognised by its id, or by
      // its body when it comes back under a new id.
      const bodySha256 = createHash('sha256').update(raw).digest('hex');
      if (!(await webhooks.claim(delivery, event, bodySha256)))
        throw conflict('delivery_replayed', `delivery ${delivery} or the same payload was already processed`);
      try {
        const target = header(req.headers['x-github-hook-installation-target-id']);
        const outcome = await webhooks.handle(event, payload, target && /^\d{1,20}$/.test(target) ? target : undefined);
        return reply.status(outcome.status).send(outcome.body);
      } catch (err) {
        await webhooks.release(delivery).catch(() => undefined);
        if (err instanceof WebhookPayloadError) throw badRequest('body', err.message);
        throw err;
      }
    },
  );
};
