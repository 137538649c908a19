// Builds the Fastify app (plugins: external → app → routes) without listening, so tests use
// `inject` or a real listener over the same instance.
import Fastify, { type FastifyInstance, type FastifyBaseLogger } from 'fastify';
import formbody from '@fastify/formbody';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { jsonSchemaTransform, serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import { loggerOptions } from '../lib/logger';
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

/** Builds the API application. */
export async function buildApp(opts: AppOptions): Promise<FastifyInstance> {
  const { services } = opts;
  const app = Fastify({
    ...(opts.logger ? { loggerInstance: opts.logger } : { logger: loggerOptions(services.config.logLevel) }),
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
      info: { title: 'repo-connect', version: '0.1.0', description: 'Connects agent rigs to GitHub and GitLab and keeps their git tokens fresh.' },
      components: {
        securitySchemes: {
          adminBearer: { type: 'http', scheme: 'bearer', description: 'ADMIN_API_TOKEN' },
          containerBearer: { type: 'http', scheme: 'bearer', description: "A dispatch's container token" },
        },
      },
    },
    transform: jsonSchemaTransform,
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });

  // Request metrics by route pattern (never the raw URL: it may hold ids without bound).
  const { httpRequests } = services.core.metrics;
  app.addHook('onResponse', (req, reply, done) => {
    httpRequests.observe({ route: req.routeOptions.url ?? 'unmatched', method: req.method, status: String(reply.statusCode) }, reply.elapsedTime / 1000);
    done();
  });

  // Routes.
  await app.register(healthRoutes, { services });
  await app.register(managementRoutes, { prefix: '/api', services });
  await app.register(internalRoutes, { prefix: '/api/internal', services });
  for (const plugin of opts.plugins ?? []) await plugin(app, services);
  return app;
}
