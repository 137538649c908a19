// Sign-in attempts per source address (admin token form, provider callbacks, sign-in links), in
// memory per API instance: enough to make guessing the admin token or replaying callbacks slow.
import type { FastifyRequest } from 'fastify';
import type { Config } from '../../lib/config';
import { AppError } from '../errors';
import { createRateLimiter } from '../services/rate-limit';

/** preHandler answering 429 with Retry-After once an address spent its sign-in attempts. */
export function loginRateLimit(config: Config) {
  const limiter = createRateLimiter({ perMinute: config.loginRateLimitPerMinute });
  return async (request: FastifyRequest): Promise<void> => {
    const wait = limiter.take(request.ip);
    if (wait > 0) {
      throw new AppError(429, 'rate_limited', 'Too many sign-in attempts from this address. Wait a moment and try again.', undefined, {
        'retry-after': String(Math.ceil(wait / 1000)),
      });
    }
  };
}
