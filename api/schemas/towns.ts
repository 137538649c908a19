import { z } from 'zod';
import { integration, isoTime, uuid } from './common';
import { rigAccess } from './rigs';

export const townParams = z.object({ town_id: uuid });

export const createTownBody = z.object({
  name: z.string().trim().min(1, 'must not be empty').max(200),
  owner_id: uuid.optional().describe("Required for admin; an owner's own id by default"),
});

// A host as git sees it: DNS name or IP, optional port. No scheme, path or credentials.
const host = z
  .string()
  .trim()
  .toLowerCase()
  .regex(/^(?=.{1,255}$)[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:\d{1,5})?$/, 'must be a host name like github.com or git.example.com:8443');

export const putGitAuthBody = z.object({
  tokens: z
    .array(
      z.object({
        host,
        token: z.string().min(1, 'must not be empty').max(4096).regex(/^\S+$/, 'must not contain whitespace'),
        // The container kit refuses control characters (git's credential protocol is line-based), so
        // a username with one would make every push of the token fail: refused here instead.
        username: z
          .string()
          .trim()
          .min(1)
          .max(255)
          .regex(/^[^\u0000-\u001f\u007f]*$/, 'must not contain control characters')
          .optional(),
      }),
    )
    .max(50),
});

export const gitAuthEntry = z.object({
  host: z.string(),
  username: z.string().nullable(),
  fingerprint: z.string(),
  updated_at: isoTime,
});

export const town = z
  .object({
    id: uuid,
    name: z.string(),
    owner_id: uuid,
    created_at: isoTime,
    updated_at: isoTime,
  })
  .describe('Town');

export const townDetail = town
  .extend({
    integrations: z.array(integration),
    connect_integration_url: z.string().nullable(),
    git_auth: z.array(gitAuthEntry),
    rigs: z.array(
      z.object({ id: uuid, name: z.string(), git_url: z.string(), platform_integration_id: uuid.nullable(), access: rigAccess }),
    ),
  })
  .describe('TownDetail');
