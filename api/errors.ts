// Domain errors thrown by services, and the one handler that turns every failure into the
// contract's error body `{error: {code, message, field?}}` without leaking internals on 5xx.
import type { FastifyError, FastifyInstance } from 'fastify';
import { hasZodFastifySchemaValidationErrors, isResponseSerializationError } from 'fastify-type-provider-zod';
import { ProviderError } from '../lib/providers/types';
import { isDatabaseUnavailable } from '../lib/db';

export class AppError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    readonly field?: string,
    readonly headers?: Record<string, string>,
  ) {
    super(message);
    this.name = 'AppError';
  }
}

export const badRequest = (field: string, message: string) => new AppError(400, 'invalid_request', message, field);
export const notFound = (what: string, field?: string) => new AppError(404, 'not_found', `${what} not found`, field);
export const forbidden = (message: string, field?: string) => new AppError(403, 'forbidden', message, field);
export const conflict = (code: string, message: string, field?: string) => new AppError(409, code, message, field);
export const unprocessable = (code: string, message: string, field?: string) => new AppError(422, code, message, field);

/** A provider failure as the API reports it: 502 with the typed code (a rejected token is the caller's 422). */
export function providerFailure(err: ProviderError, field?: string): AppError {
  if (err.code === 'invalid_credentials') return unprocessable('invalid_credentials', err.message, field);
  const headers = err.retryAfterSeconds ? { 'retry-after': String(Math.ceil(err.retryAfterSeconds)) } : undefined;
  return new AppError(502, err.code, err.message, field, headers);
}

/** The dotted path of the bad input (`tokens.0.host`) from a validation error's `/tokens/0/host`. */
function fieldOf(instancePath: string | undefined): string | undefined {
  return (instancePath ?? '').split('/').filter(Boolean).join('.') || undefined;
}

function valueAt(root: unknown, instancePath: string | undefined): unknown {
  let value = root;
  for (const key of (instancePath ?? '').split('/').filter(Boolean)) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<string, unknown>)[key];
  }
  return value;
}

/** Registers the error and not-found handlers on `app`. */
export function registerErrorHandler(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError, request, reply) => {
    if (hasZodFastifySchemaValidationErrors(err)) {
      // fastify-type-provider-zod ≥ 7 gives one entry per zod issue: keyword = issue code,
      // instancePath = the issue path, message = the issue message.
      const first = err.validation[0];
      const field = fieldOf(first.instancePath) ?? err.validationContext ?? 'body';
      // Custom messages ("must be a UUID") replace zod's "received undefined", so a missing value is
      // recognised by looking it up in what was sent.
      const part = { body: request.body, querystring: request.query, params: request.params, headers: request.headers }[
        err.validationContext ?? 'body'
      ];
      const sent = valueAt(part, first.instancePath);
      const message = first.keyword === 'invalid_type' && sent === undefined ? 'is required' : (first.message ?? 'is invalid');
      return reply.status(400).send({ error: { code: 'invalid_request', message: `${field}: ${message}`, field } });
    }
    // A provider failure a service did not map itself gets its typed 502 (an Error handed to
    // `send` here would skip this handler and end as Fastify's own 500).
    const known = err instanceof AppError ? err : err instanceof ProviderError ? providerFailure(err) : undefined;
    if (known) {
      if (known.headers) reply.headers(known.headers);
      return reply
        .status(known.statusCode)
        .send({ error: { code: known.code, message: known.message, ...(known.field ? { field: known.field } : {}) } });
    }
    if (isResponseSerializationError(err)) {
      request.log.error({ err: { message: err.message, method: err.method, url: err.url } }, 'response did not match its schema');
      return reply.status(500).send({ error: { code: 'internal_error', message: 'internal error' } });
    }
    const status = err.statusCode ?? 500;
    if (status < 500) {
      // Fastify's own 4xx (bad JSON, body too large, wrong content type).
      const code = status === 413 ? 'payload_too_large' : status === 415 ? 'unsupported_media_type' : 'invalid_request';
      // A 400 from Fastify itself is about the body as a whole (not JSON, empty).
      return reply.status(status).send({ error: { code, message: err.message, ...(status === 400 ? { field: 'body' } : {}) } });
    }
    if (isDatabaseUnavailable(err)) {
      request.log.warn(
        { reqId: request.id, err: { name: err.name, code: (err as { code?: unknown }).code, message: err.message } },
        'database unavailable',
      );
      return reply
        .status(503)
        .header('retry-after', '2')
        .send({ error: { code: 'database_unavailable', message: 'the database is not reachable; try again shortly' } });
    }
    request.log.error({ err, reqId: request.id }, 'unhandled error');
    return reply.status(500).send({ error: { code: 'internal_error', message: 'internal error' } });
  });

  app.setNotFoundHandler((request, reply) => {
    reply.status(404).send({ error: { code: 'not_found', message: `route ${request.method} ${request.url.split('?')[0]} not found` } });
  });
}
