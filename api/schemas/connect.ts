// Query strings of the browser connect flows and the dashboard pages. Callbacks come from the
// providers, so their parameters are optional here and checked by the handlers with clear pages.
import { z } from 'zod';
import { uuid } from './common';

export const githubInstallQuery = z.object({
  owner_id: uuid.optional(),
  app_type: z.enum(['standard', 'lite'], { error: 'must be "standard" or "lite"' }).default('standard'),
});

export const githubSetupQuery = z.object({
  installation_id: z.coerce.number({ error: 'must be a number' }).int().positive().max(Number.MAX_SAFE_INTEGER).optional(),
  setup_action: z.string().max(50).optional(),
  state: z.string().max(2000).optional(),
  /** Sent with the install when the app requests user authorization during installation. */
  code: z.string().max(200).optional(),
});

export const gitlabConnectQuery = z.object({ owner_id: uuid.optional() });

export const gitlabCallbackQuery = z.object({
  code: z.string().max(2000).optional(),
  state: z.string().max(2000).optional(),
  error: z.string().max(200).optional(),
  error_description: z.string().max(2000).optional(),
});

export const integrationsPageQuery = z.object({
  owner_id: uuid.optional(),
  connected: uuid.optional(),
  result: z.enum(['created', 'updated']).optional(),
});

export const openTownQuery = z.object({ id: z.string().trim().max(100).optional() });
