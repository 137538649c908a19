// One auth hook per route group, registered by api/app.ts on the group's scope:
//   /healthz, /metrics, /docs          open (restrict /metrics by network)
//   /api/* management                  adminHook: 401 without admin credentials, 403 on cross-site cookie writes
//   /api/internal/* containers         none here: the pull service resolves the container token (one lookup on the hot path)
//   /webhooks/github                   githubSignatureHook: X-Hub-Signature-256 over the raw body
//   /login, /logout, /assets/*         open (logout checks the same-origin rule itself)
//   dashboard pages, connect flows     dashboardHook: anonymous GETs go to /login, the rest as adminHook
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Config } from '../../lib/config';
import { AppError } from '../errors';
import { verifyGithubSignature } from '../webhooks/github-signature';
import { identify } from './principal';
import { safeNext } from './safe-next';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

function sameOrigin(config: Config, request: FastifyRequest): boolean {
  if (request.headers['sec-fetch-site'] === 'same-origin') return true;
  const origin = request.headers.origin ?? request.headers.referer;
  if (!origin) return false;
  try {
    const o = new URL(origin);
    return o.origin === new URL(config.publicUrl).origin || o.host === request.headers.host;
  } catch {
    return false;
  }
}

/** onRequest hook of the management API: sets `request.principal`, or 401; cookie-authenticated writes must come from this site (403). */
export function adminHook(config: Config) {
  return async (request: FastifyRequest, _reply: FastifyReply) => {
    const principal = identify(config, request);
    if (principal === null)
      throw new AppError(401, 'unauthorized', 'missing or invalid admin credentials (Authorization: Bearer <ADMIN_API_TOKEN>)', undefined, {
        'www-authenticate': 'Bearer',
      });
    if (principal.via === 'cookie' && !SAFE_METHODS.has(request.method) && !sameOrigin(config, request)) {
      throw new AppError(403, 'csrf_rejected', 'cross-site request refused: cookie-authenticated writes must come from this site');
    }
    request.principal = principal;
  };
}

/** onRequest hook of the dashboard pages and connect flows: anonymous GETs go to the login page, everything else follows adminHook. */
export function dashboardHook(config: Config) {
  const admin = adminHook(config);
  return async (request: FastifyRequest, reply: FastifyReply) => {
    if ((request.method === 'GET' || request.method === 'HEAD') && identify(config, request) === null) {
      return reply.redirect(`/login?next=${encodeURIComponent(safeNext(request.url))}`, 302);
    }
    await admin(request, reply);
  };
}

/** preValidation hook of the webhooks (the raw body is parsed by then): GitHub's signature or 401, and 503 without a secret to check it with. */
export function githubSignatureHook(config: Config) {
  return async (request: FastifyRequest) => {
    const secret = config.github.webhookSecret;
    if (!secret) {
      throw new AppError(
        503,
        'webhooks_not_configured',
        'GITHUB_WEBHOOK_SECRET is not set, so webhook signatures cannot be verified and no delivery is accepted',
      );
    }
    const raw = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
    if (!verifyGithubSignature(secret, raw, request.headers['x-hub-signature-256'])) {
      throw new AppError(
        401,
        'invalid_signature',
        'X-Hub-Signature-256 is missing or does not match the body signed with the webhook secret',
      );
    }
  };
}
