// What GitHub's webhooks change: an installation's status (uninstalled, suspended, unsuspended),
// its repository list, and the user tokens kept for a person who revoked the app's authorization. Status changes signal the integration's running dispatches so they mint
// again at once; the token activities then ask GitHub itself, so a lost or forged-but-replayed
// event cannot keep a healthy installation marked suspended for long.
import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { Core } from '../../lib/core';
import { isUniqueViolation } from '../../lib/db';
import { ProviderError } from '../../lib/providers/types';
import { identityTokenContext } from '../../lib/secret-contexts';
import { setIntegrationStatus, type IntegrationStatus } from '../../lib/integration-status';
import type { IdentityService } from './identities';
import type { IntegrationService } from './integrations';

type Deps = Pick<Core, 'db' | 'notifier' | 'logger' | 'config' | 'githubUser' | 'secrets'> & {
  integrations: Pick<IntegrationService, 'get' | 'syncRepositories'>;
  identities: Pick<IdentityService, 'githubUserToken'>;
  /** How long a delivery may wait for follow-up work before it is answered (GitHub gives up at 10 s). */
  budgetMs?: number;
};

export interface WebhookOutcome {
  status: 200 | 202;
  body: {
    result: 'pong' | 'status_changed' | 'unchanged' | 'repositories_updated' | 'user_tokens_forgotten' | 'ignored';
    detail: string;
    integration_id?: string;
    integration_status?: IntegrationStatus;
  };
}

const installationEvent = z.object({ action: z.string(), installation: z.object({ id: z.number().int().positive() }) });
const repositoriesEvent = installationEvent.extend({
  repositories_added: z.array(z.object({ id: z.number().int() })).default([]),
  repositories_removed: z.array(z.object({ id: z.number().int() })).default([]),
});

const appAuthorizationEvent = z.object({
  action: z.string(),
  sender: z.object({ id: z.number().int().positive(), login: z.string().max(255) }),
});

/** App ids as GitHub sends them and as configured (`0123` is app 123). */
const sameAppId = (a: string, b: string) => /^\d+$/.test(a) && /^\d+$/.test(b) && BigInt(a) === BigInt(b);

const STATUS_BY_ACTION: Record<string, IntegrationStatus> = { deleted: 'deleted', suspend: 'suspended', unsuspend: 'active' };
// Replays are refused by delivery id and body hash; older ones are forgotten (installation events are rare).
const RETENTION_MS = 90 * 24 * 60 * 60 * 1000;
const PRUNE_EVERY_MS = 60 * 60 * 1000;

/** A verified delivery whose payload lacks what its event needs (400). */
export class WebhookPayloadError extends Error {}

/** Handles verified GitHub deliveries: replay bookkeeping, status changes, repository lists. */
export function createGithubWebhookService(deps: Deps) {
  const { db, logger } = deps;
  const budgetMs = deps.budgetMs ?? 5000;
  const pending = new Set<Promise<unknown>>();
  let lastPruneMs = 0;

  /** Waits up to the budget; work that takes longer finishes in the background (logged if it fails). */
  async function withinBudget(what: string, work: Promise<unknown>): Promise<boolean> {
    const tracked = work.catch((err) =>
      logger.warn({ err: { message: (err as Error).message, code: (err as { code?: string }).code } }, `webhook follow-up failed: ${what}`),
    );
    pending.add(tracked);
    void tracked.finally(() => pending.delete(tracked));
    let timer: NodeJS.Timeout | undefined;
    const done = await Promise.race([
      tracked.then(() => true),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(false), budgetMs))),
    ]);
    clearTimeout(timer);
    return done;
  }

  function parse<T>(schema: z.ZodType<T>, payload: unknown): T {
    const parsed = schema.safeParse(payload);
    if (!parsed.success)
      throw new WebhookPayloadError(
        `payload: ${parsed.error.issues[0]?.path.join('.') || 'body'} ${parsed.error.issues[0]?.message ?? 'is invalid'}`,
      );
    return parsed.data;
  }

  const findByInstallation = (id: number) => db.platformIntegration.findUnique({ where: { githubInstallationId: BigInt(id) } });
  const ignored = (detail: string): WebhookOutcome => ({ status: 202, body: { result: 'ignored', detail } });

  async function installation(payload: unknown): Promise<WebhookOutcome> {
    const e = parse(installationEvent, payload);
    if (e.action === 'new_permissions_accepted') return permissionsAccepted(e.installation.id);
    const status = STATUS_BY_ACTION[e.action];
    if (!status) return ignored(`installation action ${e.action} needs nothing here`);
    const row = await findByInstallation(e.installation.id);
    if (!row) return ignored(`installation ${e.installation.id} is not registered here`);
    const reason = status === 'active' ? null : `${e.action === 'deleted' ? 'uninstalled' : 'suspended'} on GitHub (webhook)`;
    const changed = await setIntegrationStatus(db, row.id, status, reason);
    if (changed)
      await withinBudget('signalling dispatches', deps.notifier.integrationChanged(row.id, `installation ${e.action} (webhook)`));
    const current = changed ? status : row.status;
    return {
      status: 200,
      body: {
        result: changed ? 'status_changed' : 'unchanged',
        detail: `installation ${e.action}`,
        integration_id: row.id,
        integration_status: current,
      },
    };
  }

  /** The account accepted the app's new permissions: dispatches refused them (a 422) may mint now. */
  async function permissionsAccepted(installationId: number): Promise<WebhookOutcome> {
    const row = await findByInstallation(installationId);
    if (!row) return ignored(`installation ${installationId} is not registered here`);
    await withinBudget('signalling dispatches', deps.notifier.integrationFixed(row.id, 'new permissions accepted (webhook)'));
    return {
      status: 200,
      body: {
        result: 'unchanged',
        detail: 'installation new_permissions_accepted',
        integration_id: row.id,
        integration_status: row.status,
      },
    };
  }

  async function installationRepositories(payload: unknown): Promise<WebhookOutcome> {
    const e = parse(repositoriesEvent, payload);
    const row = await findByInstallation(e.installation.id);
    if (!row) return ignored(`installation ${e.installation.id} is not registered here`);
    if (row.status === 'deleted') return ignored('the integration was deleted');
    const removed = e.repositories_removed.map((r) => r.id);
    if (removed.length > 0) {
      // One statement, so a concurrent sync cannot resurrect a removed repository from a stale read.
      await db.$executeRaw`UPDATE "platform_integrations"
        SET "repositories" = (SELECT COALESCE(jsonb_agg(r), '[]'::jsonb) FROM jsonb_array_elements("repositories") r WHERE NOT ((r->>'id')::bigint = ANY(${removed}::bigint[]))),
            "updated_at" = CURRENT_TIMESTAMP
        WHERE "id" = ${row.id}::uuid`;
      // Dispatches on a removed repository mint again now and show repository_not_accessible.
      await withinBudget(
        'signalling dispatches',
        deps.notifier.integrationChanged(row.id, 'repositories removed from the installation (webhook)'),
      );
    }
    // The payload lacks default_branch and clone_url, which the picker and rigs need: list again
    // from GitHub rather than guess them. A never-synced cache is filled on first use instead.
    let synced = false;
    if (e.repositories_added.length > 0 && row.repositoriesSyncedAt !== null) {
      synced = await withinBudget(
        'syncing repositories',
        deps.integrations.get(row.id).then((fresh) => deps.integrations.syncRepositories(fresh)),
      );
    }
    // A dispatch waiting on repository_not_accessible (its repository was taken out) mints now, not
    // at its next recheck, when the repository is put back.
    if (e.repositories_added.length > 0) {
      await withinBudget(
        'signalling dispatches',
        deps.notifier.integrationFixed(row.id, 'repositories added to the installation (webhook)'),
      );
    }
    const detail = `${e.repositories_added.length} added, ${removed.length} removed${e.repositories_added.length && row.repositoriesSyncedAt !== null && !synced ? ' (sync continues in the background)' : ''}`;
    return { status: 200, body: { result: 'repositories_updated', detail, integration_id: row.id, integration_status: row.status } };
  }

  /**
   * A person revoked their authorization of an app. Only the standard app's user-to-server pair is
   * kept (for installation checks): GitHub names the app in X-GitHub-Hook-Installation-Target-ID, and
   * a delivery for another app changes nothing (one that names none is taken for the standard app).
   * The header is not signed and the body (only the person) can be replayed under a new delivery id,
   * so the delivery is a hint: the kept pair is forgotten only when GitHub itself rejects it.
   */
  async function appAuthorization(payload: unknown, appId: string | undefined): Promise<WebhookOutcome> {
    const e = parse(appAuthorizationEvent, payload);
    if (e.action !== 'revoked') return ignored(`github_app_authorization action ${e.action} needs nothing here`);
    const standard = deps.config.github.apps.standard?.appId;
    if (appId !== undefined && standard !== undefined && !sameAppId(appId, standard)) {
      return ignored(`app ${appId} is not the standard app, whose user tokens are the only ones kept`);
    }
    const identity = await db.ownerIdentity.findUnique({
      where: {
        provider_origin_providerUserId: { provider: 'github', origin: deps.githubUser.webUrl, providerUserId: BigInt(e.sender.id) },
      },
    });
    const detail = `authorization revoked by ${e.sender.login}`;
    if (!identity?.userTokenEnc) return { status: 200, body: { result: 'unchanged', detail } };
    let verdict = 'unknown' as 'forgotten' | 'works' | 'replaced' | 'unknown'; // set by the check below, which may outlast the budget
    const checked = await withinBudget(
      'checking a revoked user authorization',
      (async () => {
        // Refreshed first when due: a revoked refresh token makes the identity service forget the pair.
        const token = await deps.identities.githubUserToken(identity.ownerId);
        if (token === null) return void (verdict = 'forgotten');
        const accepted = await deps.githubUser.getUser(token).then(
          () => true,
          (err: unknown) => (err instanceof ProviderError && err.code === 'invalid_credentials' ? false : Promise.reject(err)),
        );
        if (accepted) return void (verdict = 'works');
        // Only the pair that was checked: one a new sign-in put there meanwhile stays.
        const current = await db.ownerIdentity.findUnique({ where: { id: identity.id }, select: { userTokenEnc: true } });
        const same =
          !!current?.userTokenEnc && deps.secrets.decrypt(current.userTokenEnc, identityTokenContext(identity.id, 'access')) === token;
        if (!same) return void (verdict = 'replaced');
        const wiped = await db.ownerIdentity.updateMany({
          where: { id: identity.id, userTokenEnc: current.userTokenEnc },
          data: { userTokenEnc: null, userTokenExpiresAt: null, refreshTokenEnc: null, refreshTokenExpiresAt: null },
        });
        verdict = wiped.count > 0 ? 'forgotten' : 'replaced';
      })(),
    );
    if (checked && verdict === 'forgotten') return { status: 200, body: { result: 'user_tokens_forgotten', detail } };
    const why =
      verdict === 'works'
        ? 'GitHub still accepts the kept pair (a stale or replayed delivery): kept'
        : verdict === 'replaced'
          ? 'a new sign-in replaced the pair meanwhile: kept'
          : 'GitHub could not say yet whether the kept pair works: its next use finds out';
    return { status: 200, body: { result: 'unchanged', detail: `${detail}; ${why}` } };
  }

  return {
    /**
     * Records a delivery by id and by the SHA-256 of its raw body; false when either was processed
     * before (a replay, under its own id or a new one: GitHub signs the body, not the id).
     */
    async claim(deliveryId: string, event: string, bodySha256: string): Promise<boolean> {
      // A revoked authorization's payload names only the person: GitHub sends the same body to each
      // app they revoke, and again each time they revoke after authorizing anew. Those are told apart
      // by delivery id alone; a replay under a new id changes nothing, since a pair is forgotten only
      // when GitHub rejects it (appAuthorization).
      if (event === 'github_app_authorization') bodySha256 = createHash('sha256').update(`${deliveryId}\n${bodySha256}`).digest('hex');
      if (Date.now() - lastPruneMs > PRUNE_EVERY_MS) {
        lastPruneMs = Date.now();
        await db.githubWebhookDelivery.deleteMany({ where: { receivedAt: { lt: new Date(Date.now() - RETENTION_MS) } } });
      }
      try {
        await db.githubWebhookDelivery.create({ data: { id: deliveryId, event, bodySha256 } });
        return true;
      } catch (err) {
        if (isUniqueViolation(err)) return false;
        throw err;
      }
    },

    /** Forgets a delivery whose processing failed (id and body), so GitHub's redelivery is processed. */
    async release(deliveryId: string): Promise<void> {
      await db.githubWebhookDelivery.deleteMany({ where: { id: deliveryId } });
    },

    /** `appId`: the app GitHub delivered for (X-GitHub-Hook-Installation-Target-ID), when it says. */
    async handle(event: string, payload: unknown, appId?: string): Promise<WebhookOutcome> {
      if (event === 'ping') return { status: 200, body: { result: 'pong', detail: 'webhook configured' } };
      if (event === 'installation') return installation(payload);
      if (event === 'installation_repositories') return installationRepositories(payload);
      if (event === 'github_app_authorization') return appAuthorization(payload, appId);
      return ignored(`event ${event} is not used by this service`);
    },

    /** Resolves when background follow-ups have finished (shutdown, tests). */
    async idle(): Promise<void> {
      while (pending.size > 0) await Promise.allSettled([...pending]);
    },
  };
}

export type GithubWebhookService = ReturnType<typeof createGithubWebhookService>;
