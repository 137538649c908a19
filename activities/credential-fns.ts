// Pure rules of credential resolution, unit-tested without I/O.

/**
 * Username for a static town token when none was configured: GitLab accepts `oauth2` with any
 * token, GitHub accepts any non-empty name and documents `x-access-token`.
 */
export function defaultUsernameForHost(host: string): string {
  return /(^|\.)gitlab\./.test(host) || host.startsWith('gitlab') ? 'oauth2' : 'x-access-token';
}

export const GITHUB_GIT_USERNAME = 'x-access-token';
export const GITLAB_GIT_USERNAME = 'oauth2';
