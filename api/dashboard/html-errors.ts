// The browser routes' error handler: the same classification as the JSON API (api/errors.ts), shown
// as a page with the typed code, so "installation_suspended" reads the same in both places.
import type { FastifyError, FastifyInstance } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import { ProviderError } from '../../lib/providers/types';
import { isDatabaseUnavailable } from '../../lib/db';
import { AppError, providerFailure } from '../errors';
import { messagePage, sendPage } from './layout';

const TITLES: Record<number, string> = {
  400: 'Bad request',
  401: 'Sign-in required',
  403: 'Not allowed',
  404: 'Not found',
  409: 'Conflict',
  422: 'Cannot do that here',
  429: 'Too many attempts',
  502: 'The provider failed',
  503: 'Unavailable',
};

/** Sets an HTML error handler on `scope` (an encapsulated plugin). */
export function registerHtmlErrorHandler(scope: FastifyInstance): void {
  scope.setErrorHandler((err: FastifyError, request, reply) => {
    let status: number;
    let code: string;
    let message: string;
    if (hasZodFastifySchemaValidationErrors(err)) {
      // One entry per zod issue; instancePath is the path ("/owner_id").
      const first = err.validation[0];
      const field = (first.instancePath ?? '').split('/').filter(Boolean).join('.') || err.validationContext || 'request';
      [status, code, message] = [400, 'invalid_request', `${field}: ${first.message ?? 'is invalid'}`];
    } else {
      const known = err instanceof ProviderError ? providerFailure(err) : err instanceof AppError ? err : null;
      if (known) {
        [status, code, message] = [known.statusCode, known.code, known.message];
        if (known.headers) reply.headers(known.headers);
      } else if ((err.statusCode ?? 500) < 500) {
        [status, code, message] = [err.statusCode ?? 400, 'invalid_request', err.message];
      } else if (isDatabaseUnavailable(err)) {
        reply.header('retry-after', '2');
        [status, code, message] = [503, 'database_unavailable', 'The database is not reachable right now. Try again in a moment.'];
      } else {
        request.log.error({ err }, 'unhandled error');
        [status, code, message] = [
          500,
          'internal_error',
          'Something went wrong on our side. Try again; if it persists, check the service logs.',
        ];
      }
    }
    const links =
      status === 401
        ? [{ href: `/login?next=${encodeURIComponent(request.url)}`, label: 'Sign in' }]
        : [{ href: '/', label: 'Back to the dashboard' }];
    return sendPage(reply, messagePage({ title: TITLES[status] ?? 'Error', code, message, links, viewer: request.viewer }), status);
  });
}
