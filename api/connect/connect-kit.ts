// What the connect flows and sign-in callbacks share: checking a state that came back (signature,
// expiry, the browser it is bound to, single use), failure pages with the typed code, and the
// way back to the owner's integrations.
import type { FastifyReply } from 'fastify';
import { ProviderError, type GitlabTokens } from '../../lib/providers/types';
import { AppError, providerFailure } from '../errors';
import type { Services } from '../services';
import { messagePage, sendPage } from '../dashboard/layout';
import { pkceVerifier, verifyState, type FlowState, type StatePurpose } from './connect-state';
import { consumeState } from './state-store';

export const integrationsUrl = (ownerId: string) => `/integrations?owner_id=${encodeURIComponent(ownerId)}`;

const invalidState = (what: string, reason: string) =>
  new AppError(400, 'invalid_state', `Cannot finish ${what}: ${reason}. Start again.`, 'state');

/**
 * The state of a flow coming back, once: signed by us, unexpired, of this flow, bound to one of
 * `bindings` (the caller's session or sign-in cookie) and not used before. Throws invalid_state.
 */
export async function returningState(
  services: Services,
  value: unknown,
  purpose: StatePurpose,
  bindings: string[],
  what: string,
): Promise<FlowState> {
  const check = verifyState(services.config, value, purpose);
  if (!check.ok) throw invalidState(what, check.reason);
  if (!bindings.includes(check.state.binding)) throw invalidState(what, 'the state was issued to another browser session');
  if (!(await consumeState(services.core.db, check.state))) throw invalidState(what, 'the state was already used (each works once)');
  return check.state;
}

/** Shows a failed flow with its typed code and a way back (to the owner's integrations when known). */
export function failed(reply: FastifyReply, err: unknown, ownerId: string | null, title: string): FastifyReply {
  const known = err instanceof ProviderError ? providerFailure(err) : err instanceof AppError ? err : null;
  if (!known) throw err;
  const links = ownerId
    ? [{ href: integrationsUrl(ownerId), label: 'Back to integrations' }]
    : [{ href: '/', label: 'Back to the dashboard' }];
  return sendPage(
    reply,
    messagePage({ title, code: known.code, message: known.message, links, viewer: reply.request.viewer }),
    known.statusCode,
  );
}

/** Fills the repository cache right away so the integrations page and the picker show it; a failure here is shown there. */
export async function syncQuietly(services: Services, integrationId: string): Promise<void> {
  try {
    await services.integrations.syncRepositories(await services.integrations.get(integrationId));
  } catch (err) {
    services.core.logger.warn({ integrationId, code: (err as { code?: string }).code }, 'repository sync after connect failed');
  }
}

/** Trades a GitLab authorization code (PKCE verifier from the state's nonce); a refused code says to start `again`. */
export function exchangeGitlabCode(
  services: Services,
  args: { code: string; nonce: string; redirectUri: string },
  again: string,
): Promise<GitlabTokens> {
  const { config } = services;
  return services.core.gitlab
    .exchangeCode({
      baseUrl: config.gitlab.url,
      code: args.code,
      codeVerifier: pkceVerifier(config, args.nonce),
      redirectUri: args.redirectUri,
    })
    .catch((err) => {
      // invalid_grant on a code exchange is about this code, not a grant to reconnect.
      if (err instanceof ProviderError && err.code === 'reconnect_required') {
        throw new AppError(
          400,
          'invalid_grant',
          `GitLab refused the authorization code (codes work once and expire after 10 minutes). ${again}`,
        );
      }
      throw err;
    });
}

/** Back to the owner's integrations, highlighting the one just connected. */
export function connected(reply: FastifyReply, ownerId: string, result: { created: boolean; integration: { id: string } }): FastifyReply {
  return reply.redirect(
    `${integrationsUrl(ownerId)}&connected=${result.integration.id}&result=${result.created ? 'created' : 'updated'}`,
    303,
  );
}
