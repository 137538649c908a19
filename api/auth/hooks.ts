// One auth hook per route group, registered by api/app.ts on the group's scope:
//   /healthz, /metrics, /docs          open (restrict /metrics by network)
//   /api/* management                  principalHook: 401 without admin or owner credentials, 403 on cross-site cookie writes
//   /api/internal/* containers         none here: the pull service resolves the container token (one lookup on the hot path)
//   /webhooks/github                   githubSignatureHook: X-Hub-Signature-256 over the raw body
//   /login*, /logout, /assets/*        open (sign-in is rate-limited; logout checks the same-origin rule itself)
//   dashboard pages, connect flows     dashboardHook: anonymous GETs go to /login, the rest as principalHook
// Which rows a principal reaches is the group's access rule (access.ts), a preHandler beside the hook.
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Config } from '../../lib/config';
import { AppError } from '../errors';
import { verifyGithubSignature } from '../webhooks/github-signature';
import type { Authenticator, Principal } from './principal';
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

/** Accepts `principal` for `request` (cookie-authenticated writes must come from this site: 403), or 401 when there is none. */
export function admit(config: Config, request: FastifyRequest, principal: Principal | null): Principal {
  if (principal === null)
    throw new AppError(
      401,
      'unauthorized',
      'missing or invalid credentials (Authorization: Bearer <ADMIN_API_TOKEN or an owner API token>, or a dashboard session)',
      undefined,
      { 'www-authenticate': 'Bearer' },
    );
  if (principal.via === 'cookie' && !SAFE_METHODS.has(request.method) && !sameOrigin(config, request)) {
    throw new AppError(403, 'csrf_rejected', 'cross-site request refused: cookie-authenticated writes must come from this site');
  }
  return principal;
}

/** onRequest hook of the management API: sets `request.principal` (admin or owner), or 401. */
export function principalHook(config: Config, auth: Authenticator) {
  return async (request: FastifyRequest, _reply: FastifyReply) => {
    request.principal = admit(config, request, await auth.identify(request));
  };
}

/** onRequest hook of the dashboard pages and connect flows: anonymous GETs go to the login page, everything else follows principalHook. */
export function dashboardHook(config: Config, auth: Authenticator) {
  return async (request: FastifyRequest, reply: FastifyReply) => {
    const principal = await auth.identify(request);
    if ((request.method === 'GET' || request.method === 'HEAD') && principal === null) {
      return reply.redirect(`/login?next=${encodeURIComponent(safeNext(request.url))}`, 302);
    }
    request.principal = admit(config, request, principal);
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
