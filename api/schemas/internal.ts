import { z } from 'zod';
import { isoTime, uuid } from './common';

export const pullParams = z.object({ rig_id: uuid });

export const pulledToken = z
  .object({
    token: z.string(),
    expires_at: isoTime.nullable(),
    username: z.string(),
    generation: z.number().int(),
  })
  .describe('GitToken');
