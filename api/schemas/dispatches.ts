import { z } from 'zod';
import { credentialScope, credentialSource, isoTime, uuid } from './common';

export const dispatchParams = z.object({ dispatch_id: uuid });

export const createDispatchBody = z.object({
  container_url: z.string().trim().max(2000),
});

export const createdDispatch = z.object({
  dispatch_id: uuid,
  workflow_id: z.string(),
  container_token: z.string().describe('Shown once; the service keeps only its hash and an encrypted copy.'),
});

export const dispatchStatus = z.enum(['starting', 'active', 'degraded', 'credential_error', 'stopped', 'container_unreachable']);

export const lastError = z.object({ code: z.string(), message: z.string(), at: isoTime }).nullable();

export const dispatch = z
  .object({
    id: uuid,
    rig_id: uuid,
    workflow_id: z.string(),
    container_url: z.string(),
    status: dispatchStatus,
    credential_source: credentialSource,
    credential_scope: credentialScope
      .nullable()
      .describe(
        'How far the token reaches: the rig repository alone, all the connecting account reaches, or a town token; null before the first token',
      ),
    credential_scope_reason: z
      .string()
      .nullable()
      .describe('Why a GitLab dispatch holds the account-wide grant (credential_scope account)'),
    generation: z.number().int(),
    token_expires_at: isoTime.nullable(),
    refreshed_at: isoTime.nullable(),
    last_error: lastError,
    started_at: isoTime,
    ended_at: isoTime.nullable(),
  })
  .describe('Dispatch');

export const dispatchList = z.object({ dispatches: z.array(dispatch) });

export const tokenEvent = z.object({
  kind: z.enum(['minted', 'pushed', 'push_failed', 'pulled', 'refresh_failed', 'revoked']),
  source: credentialSource,
  generation: z.number().int(),
  fingerprint: z.string().nullable(),
  expires_at: isoTime.nullable(),
  detail: z.string().nullable(),
  at: isoTime,
});

export const eventsQuery = z.object({
  limit: z.coerce
    .number({ error: 'must be a number' })
    .int('must be an integer')
    .min(1, 'must be at least 1')
    .max(1000, 'must be at most 1000')
    .default(100),
  cursor: z.string().max(200).optional().describe("The previous page's next_cursor"),
});

export const eventList = z.object({
  events: z.array(tokenEvent),
  next_cursor: z.string().nullable().describe('Pass as cursor for the next page; null at the end'),
});
