// Builds the Fastify app (plugins: external → app → routes) without listening, so tests use
// `inject` or a real listener over the same instance. Every route group is registered here, each
// in its own scope with the auth hook that decides who the caller is (api/auth/hooks.ts).
import Fastify, { LogController, type FastifyInstance, type FastifyBaseLogger, type FastifyRequest } from 'fastify';
import formbody from '@fastify/formbody';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { jsonSchemaTransform, serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import { loggerOptions } from '../lib/logger';
import type { HistogramSeries } from '../lib/metrics';
import { authorize, requireAccessRules, type Access } from './auth/access';
import { dashboardHook, githubSignatureHook, principalHook } from './auth/hooks';
import type { Principal } from './auth/principal';
import { githubConnectRoutes } from './connect/github-connect';
import { gitlabConnectRoutes } from './connect/gitlab-connect';
import { assetRoutes } from './dashboard/assets';
import { registerHtmlErrorHandler } from './dashboard/html-errors';
import { homePage } from './dashboard/pages/home-page';
import { integrationsPage } from './dashboard/pages/integrations-page';
import { rigNewPage } from './dashboard/pages/rig-new-page';
import { rigPage } from './dashboard/pages/rig-page';
import { townPage } from './dashboard/pages/town-page';
import { sessionRoutes } from './dashboard/session';
import { accountPages } from './dashboard/pages/account-pages';
import { ownerPages } from './dashboard/pages/owner-pages';
import { viewerHook, type Viewer } from './dashboard/viewer';
import { githubSignInRoutes } from './sign-in/github-sign-in';
import { gitlabSignInRoutes } from './sign-in/gitlab-sign-in';
import { linkSignInRoutes } from './sign-in/link-sign-in';
import { loginRateLimit } from './sign-in/login-limit';
import { AppError, registerErrorHandler } from './errors';
import { rejectUnstorableStrings } from './string-guard';
import { CONTAINER_PREFIX, containerRoutes } from './routes/containers';
import { createPullLane, serverWithPullLane } from './routes/pull-lane';
import { dispatchRoutes } from './routes/dispatches';
import { healthRoutes } from './routes/health';
import { integrationRoutes } from './routes/integrations';
import { ownerRoutes } from './routes/owners';
import { rigRoutes } from './routes/rigs';
import { townRoutes } from './routes/towns';
import type { Services } from './services';
import { githubWebhookRoutes } from './webhooks/github-routes';

/** A route as the app serves it, and the access rule it declares (api/auth/access.ts). */
export interface RouteSummary {
  method: string;
  url: string;
  access?: Access;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Every route of the app, in registration order (HEAD copies of GET routes left out). */
    routeList: RouteSummary[];
  }
}

export interface AppOptions {
  services: Services;
  /** A pino logger to use instead of building one (tests capture output this way). */
  logger?: FastifyBaseLogger;
}

/** High-frequency machine routes: the pull route and health/metrics probes. */
function isQuietUrl(url: string | undefined): boolean {
  return url !== undefined && (url.startsWith('/api/internal/') || url === '/healthz' || url === '/metrics');
}

/**
 * JSON only on the management API: Fastify would otherwise parse text/plain and form bodies into
 * something that fails validation with a confusing message (or, for forms, passes it).
 */
async function jsonBodiesOnly(req: FastifyRequest): Promise<void> {
  const hasBody = req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
  const type = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
  if (hasBody && type !== 'application/json') {
    throw new AppError(415, 'unsupported_media_type', 'request bodies must be JSON (Content-Type: application/json)');
  }
}

/** Builds the API application. */
export async function buildApp(opts: AppOptions): Promise<FastifyInstance> {
  const { services } = opts;
  // Fresh pulls answered from memory in front of the framework (api/routes/pull-lane.ts).
  const lane = createPullLane({ pull: services.pull, metrics: services.core.metrics });
  const app = Fastify({
    serverFactory: serverWithPullLane(lane),
    ...(opts.logger ? { loggerInstance: opts.logger } : { logger: loggerOptions(services.config.logLevel) }),
    // Containers pull (and probes poll) far more often than people call the API: those requests
    // get no per-request log lines and no per-request child logger, a large share of the pull
    // route's cost (README, "Performance"). Their errors still reach the log through the shared error handler.
    logController: new LogController({ disableRequestLogging: (req) => isQuietUrl(req.url) }),
    childLoggerFactory: (logger, bindings, childOpts, rawReq) => (isQuietUrl(rawReq.url) ? logger : logger.child(bindings, childOpts)),
    bodyLimit: 64 * 1024,
    // Request ids for log correlation; the header lets a proxy pass its own.
    requestIdHeader: 'x-request-id',
    trustProxy: false,
  }).withTypeProvider<ZodTypeProvider>();
  // An empty body with a JSON content type (curl -H 'content-type: application/json' -X POST) is
  // no body, not a syntax error; routes that need a body still say which field is missing.
  const defaultJson = app.getDefaultJsonParser('error', 'error');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (req, body, done) => {
    const text = body.toString();
    if (text.trim() === '') return done(null, undefined);
    return defaultJson(req, text, done);
  });
  // Who is calling: set by the auth hook of the route's group, null where a group has none.
  app.decorateRequest<Principal | null>('principal', null);
  const routeList: RouteSummary[] = [];
  app.decorate('routeList', routeList);
  app.addHook('onRoute', (route) => {
    for (const method of [route.method].flat()) {
      if (method !== 'HEAD') routeList.push({ method, url: route.url, access: route.config?.access });
    }
  });
  // Closing: the framework answers every request (503 for new ones), the lane none.
  app.addHook('preClose', (done) => {
    lane.close();
    done();
  });
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  registerErrorHandler(app);
  // Every route, whatever group: NUL bytes and lone surrogates are a 400 naming the field.
  app.addHook('preValidation', rejectUnstorableStrings);

  // External plugins.
  await app.register(formbody);
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'repo-connect',
        version: '0.1.0',
        description: 'Connects agent rigs to GitHub and GitLab and keeps their git tokens fresh.',
      },
      components: {
        securitySchemes: {
          adminBearer: { type: 'http', scheme: 'bearer', description: 'ADMIN_API_TOKEN' },
          ownerBearer: { type: 'http', scheme: 'bearer', description: "An owner's API token (rco_…): reaches that owner's rows only" },
          containerBearer: { type: 'http', scheme: 'bearer', description: "A dispatch's container token" },
        },
      },
    },
    transform: jsonSchemaTransform,
  });
  // Served from node_modules, never a CDN; the policy keeps the page on our own origin (the
  // plugin's default adds upgrade-insecure-requests, which breaks the page over plain http).
  await app.register(swaggerUi, {
    routePrefix: '/docs',
    uiConfig: { validatorUrl: null, docExpansion: 'list' },
    staticCSP:
      "default-src 'self'; base-uri 'self'; connect-src 'self'; font-src 'self' data:; frame-ancestors 'self'; img-src 'self' data:; object-src 'none'; script-src 'self'; script-src-attr 'none'; style-src 'self' 'unsafe-inline'",
  });

  // Request metrics by route pattern (never the raw URL: it may hold ids without bound). The
  // series of each route/method/status is resolved once, so observing is a few additions.
  const { httpRequests } = services.core.metrics;
  const seriesByKey = new Map<string, HistogramSeries>();
  app.addHook('onResponse', (req, reply, done) => {
    const route = req.routeOptions.url ?? 'unmatched';
    const key = `${req.method} ${reply.statusCode} ${route}`;
    let series = seriesByKey.get(key);
    if (!series) seriesByKey.set(key, (series = httpRequests.series({ route, method: req.method, status: String(reply.statusCode) })));
    httpRequests.observe(series, reply.elapsedTime / 1000);
    done();
  });

  // Routes, one group per scope. Open: health and metrics (and /docs above).
  const { config } = services;
  await app.register(healthRoutes, { services });
  // Management, one file per resource as in schemas/ and services/: admin or owner (bearer or
  // session), each route's declared access checked by one preHandler.
  await app.register(
    async (group) => {
      requireAccessRules(group);
      group.addHook('onRequest', principalHook(config, services.auth));
      group.addHook('preParsing', jsonBodiesOnly);
      group.addHook('preHandler', authorize(services.core.db));
      for (const routes of [townRoutes, integrationRoutes, rigRoutes, dispatchRoutes, ownerRoutes])
        await group.register(routes, { services });
    },
    { prefix: '/api' },
  );
  // Containers: the pull service resolves the container token.
  await app.register(containerRoutes, { prefix: CONTAINER_PREFIX, services });
  // Webhooks: GitHub's signature over the raw body.
  await app.register(async (group) => {
    group.addHook('preValidation', githubSignatureHook(config));
    await group.register(githubWebhookRoutes, { services });
  });
  // Browser routes answer errors with a page. Sign-in and the files its page needs are open.
  await app.register(async (group) => {
    registerHtmlErrorHandler(group);
    await assetRoutes(group);
    const limit = loginRateLimit(config);
    await sessionRoutes(group, services, limit);
    await linkSignInRoutes(group, services, limit);
    const typed = group.withTypeProvider<ZodTypeProvider>();
    await typed.register(githubSignInRoutes, { services, limit });
    await typed.register(gitlabSignInRoutes, { services, limit });
  });
  // Dashboard pages and connect flows: a session (or a bearer); anonymous browsers go to sign-in.
  // The same access rule as the API, its 404s shown as pages.
  await app.register(async (group) => {
    registerHtmlErrorHandler(group);
    requireAccessRules(group);
    group.addHook('onRequest', dashboardHook(config, services.auth));
    group.decorateRequest<Viewer | null>('viewer', null);
    group.addHook('preHandler', viewerHook(services));
    group.addHook('preHandler', authorize(services.core.db));
    const typed = group.withTypeProvider<ZodTypeProvider>();
    for (const routes of [
      homePage,
      ownerPages,
      accountPages,
      townPage,
      integrationsPage,
      rigNewPage,
      rigPage,
      githubConnectRoutes,
      gitlabConnectRoutes,
    ])
      await typed.register(routes, { services });
  });
  return app;
}
