// Shapes shared by several resources. JSON is snake_case; times are ISO-8601 UTC strings.
import { z } from 'zod';

/** A UUID in any case, as lower case: ids are stored and compared lower case (Postgres prints them so). */
export const uuid = z.uuid({ error: 'must be a UUID' }).toLowerCase();
export const isoTime = z.string().describe('ISO-8601 UTC time');

/**
 * A provider's numeric id in a body: a JSON number, or digits in a string (the dashboard's forms
 * send strings). Not z.coerce, which took `true` for 1 and `[]` for 0.
 */
export const numericId = z
  .union([z.number(), z.string().regex(/^\d+$/).transform(Number)], { error: 'must be a number' })
  .pipe(z.number().int('must be an integer').positive('must be positive').max(Number.MAX_SAFE_INTEGER));

export const errorBody = z
  .object({
    error: z.object({
      code: z.string(),
      message: z.string(),
      field: z.string().optional(),
    }),
  })
  .describe('Error');

/** Standard error responses every management route may give. */
export const errorResponses = {
  400: errorBody,
  401: errorBody,
  403: errorBody,
  404: errorBody,
  409: errorBody,
  422: errorBody,
  502: errorBody,
  503: errorBody,
} as const;

export const providerName = z.enum(['github', 'gitlab']);
export const integrationStatus = z.enum(['active', 'suspended', 'deleted', 'reconnect_required']);
export const credentialSource = z.enum(['integration', 'town_git_auth', 'none']);
export const credentialScope = z.enum(['repository', 'account', 'static']);

export const platformRepository = z
  .object({
    id: z.number().int(),
    name: z.string(),
    full_name: z.string(),
    private: z.boolean(),
    default_branch: z.string(),
    clone_url: z.string(),
    platform: providerName,
  })
  .describe('PlatformRepository');

/** Integration as every response shows it: no secrets, by construction. */
export const integration = z
  .object({
    id: uuid,
    owner_id: uuid,
    provider: providerName,
    status: integrationStatus,
    status_reason: z.string().nullable(),
    account: z.string().nullable(),
    installation_id: z.number().int().nullable(),
    app_type: z.enum(['standard', 'lite']).nullable(),
    base_url: z.string().nullable(),
    repository_count: z.number().int(),
    repositories_synced_at: isoTime.nullable(),
    created_at: isoTime,
    updated_at: isoTime,
  })
  .describe('Integration');

/** The OpenAPI security requirement of the management routes: admin or an owner's API token (the dashboard session works too). */
export const ownerSecurity: Array<Record<string, string[]>> = [{ adminBearer: [] }, { ownerBearer: [] }];
