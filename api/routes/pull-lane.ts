// The pull route's hot path, in the HTTP server's request listener in front of Fastify. Nearly every
// pull is a container asking for a fresh lease this process holds in memory; answering those here
// skips the framework's request and reply objects, routing, hooks and reply pipeline, which cost
// about as much CPU as the rest of the answer (README, "Performance"). The lane only answers what
// it can settle at once from memory: a bodiless POST to the exact route path, a container token
// whose cached lease is fresh, of this rig, not older than the generation the caller holds, and
// within the token's rate limit. Everything else (a body, an unknown token, another rig, an ended
// dispatch, a stale lease, a malformed header, a server closing) goes to Fastify untouched, whose
// route (./containers.ts) answers it, so a request gets the same answer whichever way it goes
// (test/api/pull-lane.test.ts compares them).
import { createServer, type IncomingMessage, type Server, type ServerOptions, type ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { HistogramSeries, Metrics } from '../../lib/metrics';
import { bearerOf } from '../auth/principal';
import type { PullService } from '../services/pull';
import { CONTAINER_PREFIX, HELD_GENERATION_HEADER, PULL_ROUTE, UUID, parseHeldGeneration } from './containers';

const PREFIX = `${CONTAINER_PREFIX}/rigs/`;
const SUFFIX = '/git-token';
const UUID_LENGTH = 36;

export interface PullLane {
  /** Answers `req` when it can be settled from memory; false leaves it untouched for the framework. */
  serve(req: IncomingMessage, res: ServerResponse): boolean;
  /** From now on every request goes to the framework (which answers 503 while it closes). */
  close(): void;
}

export function createPullLane(deps: { pull: PullService; metrics: Metrics }): PullLane {
  const { pull, metrics } = deps;
  // The same series the framework's onResponse hook observes for this route and status (api/app.ts).
  let series: HistogramSeries | undefined;
  let open = true;

  /** The rig id of a request to the pull route's exact path, else undefined. */
  function rigIdOf(url: string | undefined): string | undefined {
    if (url === undefined || url.length !== PREFIX.length + UUID_LENGTH + SUFFIX.length) return undefined;
    if (!url.startsWith(PREFIX) || !url.endsWith(SUFFIX)) return undefined;
    const rigId = url.slice(PREFIX.length, PREFIX.length + UUID_LENGTH);
    return UUID.test(rigId) ? rigId.toLowerCase() : undefined; // as the route's schema reads it
  }

  return {
    serve(req, res) {
      if (!open || req.method !== 'POST') return false;
      const started = performance.now();
      const rigId = rigIdOf(req.url);
      if (rigId === undefined) return false;
      const { headers } = req;
      // A body is the framework's to read and judge (its size, type and syntax).
      if (headers['transfer-encoding'] !== undefined) return false;
      const length = headers['content-length'];
      if (length !== undefined && length !== '0') return false;
      const bearer = bearerOf(headers.authorization);
      const held = parseHeldGeneration(headers[HELD_GENERATION_HEADER]);
      if (bearer === undefined || held === undefined) return false;
      const body = pull.pullFromMemory(rigId, bearer, held);
      if (body === undefined) return false;
      metrics.servedPulls.lane += 1;
      // As the route answers: never cached by anything between the service and the container.
      res.writeHead(200, {
        'content-type': 'application/json; charset=utf-8',
        'cache-control': 'no-store',
        'content-length': Buffer.byteLength(body),
      });
      res.end(body);
      series ??= metrics.httpRequests.series({ route: PULL_ROUTE, method: 'POST', status: '200' });
      metrics.httpRequests.observe(series, (performance.now() - started) / 1000);
      return true;
    },
    close() {
      open = false;
    },
  };
}

/** The options Fastify hands its server factory, of those it applies to a server it builds itself. */
interface ServerFactoryOptions {
  http?: ServerOptions;
  keepAliveTimeout?: number;
  requestTimeout?: number;
  connectionTimeout?: number;
  maxRequestsPerSocket?: number | null;
}

/**
 * Fastify's `serverFactory`: the HTTP/1 server Fastify would build from these options, with the lane
 * in front of Fastify's handler.
 */
export function serverWithPullLane(
  lane: PullLane,
): (handler: (req: IncomingMessage, res: ServerResponse) => void, opts: ServerFactoryOptions) => Server {
  return (handler, opts) => {
    const server = createServer(opts.http ?? {}, (req, res) => {
      if (!lane.serve(req, res)) handler(req, res);
    });
    // What Fastify sets on a server of its own making (fastify/lib/server.js).
    if (opts.keepAliveTimeout !== undefined) server.keepAliveTimeout = opts.keepAliveTimeout;
    if (opts.requestTimeout !== undefined) server.requestTimeout = opts.requestTimeout;
    server.setTimeout(opts.connectionTimeout ?? 0);
    if (opts.maxRequestsPerSocket && opts.maxRequestsPerSocket > 0) server.maxRequestsPerSocket = opts.maxRequestsPerSocket;
    return server;
  };
}
