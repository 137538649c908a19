import { z } from 'zod';
import { isoTime, uuid } from './common';

export const pullParams = z.object({ rig_id: uuid });

/** A held generation as the header carries it (Node's parser has trimmed the value). */
export const HELD_GENERATION = /^[1-9][0-9]{0,14}$/;

export const pullHeaders = z.object({
  'repo-connect-generation': z
    .string()
    .regex(HELD_GENERATION)
    .optional()
    .describe(
      'The generation the container already holds (from a push or an earlier pull). The answer is never an older one, ' +
        'even from an API instance that has not yet heard of the newer lease.',
    ),
});

export const pulledToken = z
  .object({
    token: z.string(),
    expires_at: isoTime.nullable(),
    username: z.string(),
    generation: z.number().int(),
  })
  .describe('GitToken');
