import { z } from 'zod';
import { credentialScope, credentialSource, integrationStatus, isoTime, numericId, providerName, uuid } from './common';

export const rigParams = z.object({ rig_id: uuid });

const repositoryId = numericId;

/** What the rig's agents may do in its repository; tokens are minted to match (README "Read-only rigs"). */
export const rigAccess = z
  .enum(['read', 'write'])
  .describe(
    "`write`: clone and push; `read`: clone and fetch only (GitHub `contents: read`, GitLab `read_repository`). A lite GitHub installation's rigs are always `read`",
  );

/** Either through an integration (platform_integration_id + repository_id) or manual (git_url). */
export const createRigBody = z.object({
  name: z.string().trim().min(1, 'must not be empty').max(200),
  platform_integration_id: uuid.nullable().optional(),
  repository_id: repositoryId.optional(),
  git_url: z.string().trim().max(2000).optional(),
  default_branch: z.string().trim().max(255).optional(),
  access: rigAccess.optional().describe('Default `write`, or `read` on a lite GitHub installation (where `write` is refused)'),
});

export const patchRigBody = z.object({
  name: z.string().trim().min(1, 'must not be empty').max(200).optional(),
  platform_integration_id: uuid.nullable().optional(),
  repository_id: repositoryId.optional(),
  git_url: z.string().trim().max(2000).optional(),
  default_branch: z.string().trim().max(255).optional(),
  access: rigAccess
    .optional()
    .describe("Changing it revokes a GitLab rig's project token and running dispatches get a new token within seconds"),
});

export const rig = z
  .object({
    id: uuid,
    town_id: uuid,
    name: z.string(),
    git_url: z.string(),
    default_branch: z.string(),
    platform_integration_id: uuid.nullable(),
    repository_id: z.number().int().nullable(),
    repository_full_name: z.string().nullable(),
    access: rigAccess,
    created_at: isoTime,
    updated_at: isoTime,
  })
  .describe('Rig');

export const rigDetail = rig
  .extend({
    integration: z.object({ id: uuid, provider: providerName, account: z.string().nullable(), status: integrationStatus }).nullable(),
    credential_source: credentialSource,
    credential_scope: credentialScope
      .nullable()
      .describe("How far the rig's tokens reach; null for a GitLab rig until its first dispatch asks GitLab, or without credentials"),
    credential_scope_reason: z.string().nullable().describe('Why a GitLab rig holds the account-wide grant (credential_scope account)'),
    project_token_state: z
      .object({
        status: z.enum(['none', 'active', 'fallback', 'revoking', 'revoked']),
        usable_until: isoTime.nullable().describe('When dispatches stop using it (it is rotated shortly before)'),
        rotated_at: isoTime.nullable(),
      })
      .nullable()
      .describe("A GitLab rig's project access token (never the token itself); null for other rigs"),
  })
  .describe('RigDetail');
