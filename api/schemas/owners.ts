import { z } from 'zod';
import { isoTime, uuid } from './common';

export const ownerParams = z.object({ owner_id: uuid });
export const tokenParams = z.object({ owner_id: uuid, token_id: uuid });
export const sessionParams = z.object({ owner_id: uuid, session_id: uuid });

export const createTokenBody = z.object({
  name: z.string().trim().min(1, 'must not be empty').max(100),
});

export const createdToken = z
  .object({
    id: uuid,
    name: z.string(),
    token: z.string().describe('rco_…: shown once, stored only as a hash'),
    owner_id: uuid,
    created_at: isoTime,
  })
  .describe('CreatedOwnerToken');

export const tokenList = z.object({
  tokens: z.array(z.object({ id: uuid, name: z.string(), created_at: isoTime, last_used_at: isoTime.nullable() })),
});

export const signInLink = z.object({
  url: z.string().describe('One-time URL: signs a browser in as the owner and redirects to /'),
  expires_at: isoTime,
});

export const sessionList = z.object({
  sessions: z.array(
    z.object({
      id: uuid,
      created_at: isoTime,
      last_seen_at: isoTime,
      expires_at: isoTime,
      user_agent: z.string().nullable(),
      current: z.boolean().describe('the session making this request'),
    }),
  ),
});
