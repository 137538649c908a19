import { z } from 'zod';
import { credentialSource, integrationStatus, isoTime, numericId, providerName, uuid } from './common';

export const rigParams = z.object({ rig_id: uuid });

const repositoryId = numericId;

/** Either through an integration (platform_integration_id + repository_id) or manual (git_url). */
export const createRigBody = z.object({
  name: z.string().trim().min(1, 'must not be empty').max(200),
  platform_integration_id: uuid.nullable().optional(),
  repository_id: repositoryId.optional(),
  git_url: z.string().trim().max(2000).optional(),
  default_branch: z.string().trim().max(255).optional(),
});

export const patchRigBody = z.object({
  name: z.string().trim().min(1, 'must not be empty').max(200).optional(),
  platform_integration_id: uuid.nullable().optional(),
  repository_id: repositoryId.optional(),
  git_url: z.string().trim().max(2000).optional(),
  default_branch: z.string().trim().max(255).optional(),
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
    created_at: isoTime,
    updated_at: isoTime,
  })
  .describe('Rig');

export const rigDetail = rig
  .extend({
    integration: z.object({ id: uuid, provider: providerName, account: z.string().nullable(), status: integrationStatus }).nullable(),
    credential_source: credentialSource,
  })
  .describe('RigDetail');
