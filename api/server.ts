// Runs the API: starts the services (lease-cache listener), listens, and closes gracefully
// (in-flight requests finish, then the listener and cache go).
import type { FastifyInstance } from 'fastify';
import type { Core } from '../lib/core';
import { buildApp, type AppOptions } from './app';
import { createServices, type ServiceOptions, type Services } from './services';

export interface RunningApi {
  app: FastifyInstance;
  services: Services;
  url: string;
  close(): Promise<void>;
}

/** Builds the services and app over `core` and listens on the configured host and port. */
export async function startApi(core: Core, opts: ServiceOptions & Pick<AppOptions, 'logger'> = {}): Promise<RunningApi> {
  const services = createServices(core, opts);
  await services.start();
  const app = await buildApp({ services, logger: opts.logger });
  const address = await app.listen({ host: core.config.host, port: core.config.port });
  const port = (app.server.address() as { port: number }).port;
  return {
    app,
    services,
    url: address.startsWith('http')
      ? `http://${core.config.host.includes(':') ? `[${core.config.host}]` : core.config.host}:${port}`
      : address,
    async close() {
      await app.close();
      await services.close();
    },
  };
}
