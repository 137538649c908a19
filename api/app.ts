// Builds the Fastify app (plugins: external → app → routes) without listening, so tests use
// `inject` or a real listener over the same instance.
import Fastify, { LogController, type FastifyInstance, type FastifyBaseLogger } from 'fastify';
import formbody from '@fastify/formbody';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { jsonSchemaTransform, serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import { loggerOptions } from '../lib/logger';
import type { HistogramSeries } from '../lib/metrics';
import { registerErrorHandler } from './errors';
import { healthRoutes } from './routes/health';
import { internalRoutes } from './routes/internal';
import { managementRoutes } from './routes/management';
import type { Services } from './services';

export interface AppOptions {
  services: Services;
  /** A pino logger to use instead of building one (tests capture output this way). */
  logger?: FastifyBaseLogger;
  /** Extra route plugins registered last (the dashboard). */
  plugins?: Array<(app: FastifyInstance, services: Services) => Promise<void>>;
}

/** High-frequency machine routes: the pull route and health/metrics probes. */
function isQuietUrl(url: string | undefined): boolean {
  return url !== undefined && (url.startsWith('/api/internal/') || url === '/healthz' || url === '/metrics');
}

/** Builds the API application. */
export async function buildApp(opts: AppOptions): Promise<FastifyInstance> {
  const { services } = opts;
  const app = Fastify({
    ...(opts.logger ? { loggerInstance: opts.logger } : { logger: loggerOptions(services.config.logLevel) }),
    // Containers pull (and probes poll) far more often than people call the API: those requests
    // get no per-request log lines and no per-request child logger, which measured as a quarter of
    // the pull route's cost. Their errors still reach the log through the shared error handler.
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
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  registerErrorHandler(app);

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

  // Routes.
  await app.register(healthRoutes, { services });
  await app.register(managementRoutes, { prefix: '/api', services });
  await app.register(internalRoutes, { prefix: '/api/internal', services });
  for (const plugin of opts.plugins ?? []) await plugin(app, services);
  return app;
}
