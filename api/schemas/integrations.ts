import { z } from 'zod';
import { integration, isoTime, numericId, platformRepository, uuid } from './common';

const ownerId = uuid.optional().describe("Required for admin; an owner's own id by default");

export const integrationParams = z.object({ integration_id: uuid });

export const registerGithubBody = z.object({
  provider: z.literal('github'),
  owner_id: ownerId,
  installation_id: numericId,
  app_type: z.enum(['standard', 'lite']).default('standard'),
});

export const registerGitlabBody = z.object({
  provider: z.literal('gitlab'),
  owner_id: ownerId,
  base_url: z.url({ error: 'must be a URL' }).max(2000).optional(),
  access_token: z.string().min(1).max(4096),
  refresh_token: z.string().min(1).max(4096),
  expires_at: z.iso.datetime({ offset: true, error: 'must be an ISO-8601 time' }),
});

export const registerBody = z.discriminatedUnion('provider', [registerGithubBody, registerGitlabBody], {
  error: 'provider must be "github" or "gitlab"',
});

export const listQuery = z.object({ owner_id: ownerId });

export const repositoriesQuery = z.object({
  q: z.string().max(200).optional(),
  refresh: z
    .enum(['true', 'false', '1', '0'])
    .optional()
    .transform((v) => v === 'true' || v === '1'),
});

export const integrationList = z.object({ integrations: z.array(integration) });

export const repositoryList = z.object({
  repositories: z.array(platformRepository),
  synced_at: isoTime.nullable(),
});
