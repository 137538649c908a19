// Small helpers for the management-API tests: error assertions, response recording for secret
// scans, and a fake GitLab with the OAuth application the service is configured with.
import { FakeGitLab } from '../fakes/gitlab';
import type { Harness } from './harness';

export interface ApiResponse<T = unknown> {
  status: number;
  body: T;
  headers: Headers;
}

type ErrorBody = { error?: { code?: string; message?: string; field?: string } };

/** ISO-8601 UTC with milliseconds, as every time in the API is written. */
export const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/** Asserts the contract's error body: status, code, field (exactly, or absent) and a message. */
export function expectError(res: ApiResponse<unknown>, status: number, code: string, field?: string): void {
  const body = res.body as ErrorBody;
  expect({ status: res.status, code: body?.error?.code, field: body?.error?.field }).toEqual({ status, code, field });
  expect(body.error?.message).toEqual(expect.any(String));
  expect(body.error!.message!.length).toBeGreaterThan(3);
}

/** Asserts a 400 invalid_request naming `field`, with a message that mentions it. */
export function expectInvalid(res: ApiResponse<unknown>, field: string, message?: RegExp): void {
  expectError(res, 400, 'invalid_request', field);
  if (message) expect((res.body as ErrorBody).error?.message).toMatch(message);
}

/**
 * Records the text of every response `h.call` returns from now on, so a test can scan all of
 * them for secrets at the end.
 */
export function recordResponses(h: Harness): string[] {
  const seen: string[] = [];
  const call = h.call.bind(h);
  h.call = (async (method: string, path: string, body?: unknown, headers?: Record<string, string>) => {
    const res = await call(method, path, body, headers);
    seen.push(`${method} ${path} ${res.status} ${JSON.stringify(res.body)}`);
    return res;
  }) as Harness['call'];
  return seen;
}

/** Fails when any recorded response contains any of `secrets`; returns how many were scanned. */
export function expectNoSecrets(responses: string[], secrets: string[]): number {
  expect(secrets.length).toBeGreaterThan(0);
  for (const text of responses)
    for (const s of secrets) if (text.includes(s)) throw new Error(`secret leaked in response: ${text.slice(0, 200)}`);
  return responses.length;
}

export interface GitlabWorld {
  gl: FakeGitLab;
  clientId: string;
  env: Record<string, string>;
}

/** A fake GitLab (optionally under a path prefix) with the service's OAuth application registered. */
export async function gitlabWorld(opts: { pathPrefix?: string } = {}): Promise<GitlabWorld> {
  const gl = await FakeGitLab.start(opts);
  const clientId = 'rc-client';
  gl.registerApplication({ clientId, clientSecret: 'rc-secret', redirectUri: 'http://127.0.0.1/integrations/gitlab/callback' });
  return { gl, clientId, env: { GITLAB_URL: gl.baseUrl, GITLAB_CLIENT_ID: clientId, GITLAB_CLIENT_SECRET: 'rc-secret' } };
}

/** A GitLab user with `projects` projects and a fresh grant, as a registration body. */
export function gitlabGrant(world: GitlabWorld, opts: { username?: string; projects?: number; expired?: boolean } = {}) {
  const user = world.gl.addUser({ username: opts.username ?? `user-${Math.random().toString(36).slice(2, 8)}` });
  const projects = world.gl.addProjects(user.id, opts.projects ?? 2);
  const grant = world.gl.grant(user.id, world.clientId);
  const expiresAt = opts.expired ? new Date(Date.now() - 60_000) : grant.expiresAt;
  return {
    user,
    projects,
    grant,
    body: { access_token: grant.accessToken, refresh_token: grant.refreshToken, expires_at: expiresAt.toISOString() },
  };
}
