// The browser-facing parts of the API process: sign-in, the dashboard pages, the connect flows and
// GitHub's webhooks. Registered by the composition root as an app plugin (AppOptions['plugins']).
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { connectRoutes } from '../connect/connect-routes';
import type { Services } from '../services';
import { createGithubWebhookService } from '../services/github-webhooks';
import { githubWebhookRoutes } from '../webhooks/github-routes';
import { assetRoutes } from './assets';
import { registerHtmlErrorHandler } from './html-errors';
import { homePage } from './pages/home-page';
import { integrationsPage } from './pages/integrations-page';
import { rigNewPage } from './pages/rig-new-page';
import { rigPage } from './pages/rig-page';
import { townPage } from './pages/town-page';
import { requireDashboardSession, sessionRoutes } from './session';

/** Registers the dashboard, the connect flows and POST /webhooks/github on `app`. */
export async function dashboardPlugin(app: FastifyInstance, services: Services): Promise<void> {
  const webhooks = createGithubWebhookService({ ...services.core, integrations: services.integrations });
  app.addHook('onClose', async () => webhooks.idle());

  await app.register(githubWebhookRoutes, { services, webhooks });

  // Public: the login page and the files it needs.
  await app.register(async (scope) => {
    registerHtmlErrorHandler(scope);
    await assetRoutes(scope);
    await sessionRoutes(scope, services.config);
  });

  // Everything else needs the admin session (or bearer).
  await app.register(async (scope) => {
    registerHtmlErrorHandler(scope);
    scope.addHook('onRequest', requireDashboardSession(services.config));
    const typed = scope.withTypeProvider<ZodTypeProvider>();
    for (const routes of [homePage, townPage, integrationsPage, rigNewPage, rigPage, connectRoutes])
      await typed.register(routes, { services });
  });
}
