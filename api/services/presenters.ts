// Row → response shape. Responses are also filtered by their zod schemas, so a secret column
// added to a row later cannot reach a client by accident.
import type { AgentDispatch, PlatformIntegration, Rig, TokenEvent, Town } from '../../prisma/generated/client';

const iso = (d: Date | null | undefined) => (d ? d.toISOString() : null);
const num = (b: bigint | null) => (b === null ? null : Number(b));

export function presentTown(t: Town) {
  return { id: t.id, name: t.name, owner_id: t.ownerId, created_at: t.createdAt.toISOString(), updated_at: t.updatedAt.toISOString() };
}

export function presentIntegration(i: PlatformIntegration) {
  return {
    id: i.id,
    owner_id: i.ownerId,
    provider: i.provider,
    status: i.status,
    status_reason: i.statusReason,
    account: i.accountLogin,
    installation_id: num(i.githubInstallationId),
    app_type: i.githubAppType,
    base_url: i.gitlabBaseUrl,
    repository_count: Array.isArray(i.repositories) ? i.repositories.length : 0,
    repositories_synced_at: iso(i.repositoriesSyncedAt),
    created_at: i.createdAt.toISOString(),
    updated_at: i.updatedAt.toISOString(),
  };
}

export function presentRig(r: Rig) {
  return {
    id: r.id,
    town_id: r.townId,
    name: r.name,
    git_url: r.gitUrl,
    default_branch: r.defaultBranch,
    platform_integration_id: r.platformIntegrationId,
    repository_id: num(r.repositoryId),
    repository_full_name: r.repositoryFullName,
    access: r.access,
    created_at: r.createdAt.toISOString(),
    updated_at: r.updatedAt.toISOString(),
  };
}

export function presentDispatch(d: AgentDispatch) {
  return {
    id: d.id,
    rig_id: d.rigId,
    workflow_id: d.workflowId,
    container_url: d.containerUrl,
    status: d.status,
    credential_source: d.credentialSource,
    credential_scope: d.credentialScope,
    credential_scope_reason: d.scopeReason,
    generation: d.generation,
    token_expires_at: iso(d.tokenExpiresAt),
    refreshed_at: iso(d.refreshedAt),
    last_error: d.lastErrorCode
      ? { code: d.lastErrorCode, message: d.lastErrorMessage ?? '', at: iso(d.lastErrorAt) ?? d.updatedAt.toISOString() }
      : null,
    started_at: d.startedAt.toISOString(),
    ended_at: iso(d.endedAt),
  };
}

export function presentEvent(e: TokenEvent) {
  return {
    kind: e.kind,
    source: e.source,
    generation: e.generation,
    fingerprint: e.fingerprint,
    expires_at: iso(e.expiresAt),
    detail: e.detail,
    at: e.at.toISOString(),
  };
}
