import {
  activeProjects,
  buildAuthorizeUrl,
  classifyGitlabApiFailure,
  classifyGitlabTokenFailure,
  GITLAB_SCOPES,
  gitlabUrl,
  nextPage,
  parseTokenResponse,
  toPlatformProject,
} from '../../lib/providers/gitlab-fns';

describe('gitlabUrl / buildAuthorizeUrl', () => {
  it('keeps a self-managed path prefix and tolerates trailing slashes', () => {
    expect(gitlabUrl('https://gitlab.com', '/oauth/token')).toBe('https://gitlab.com/oauth/token');
    expect(gitlabUrl('https://git.example.com/gitlab/', '/api/v4/user')).toBe('https://git.example.com/gitlab/api/v4/user');
  });

  it('builds a PKCE S256 authorize URL with the minimal scopes', () => {
    const url = new URL(
      buildAuthorizeUrl({
        baseUrl: 'https://git.example.com/gitlab',
        clientId: 'cid',
        redirectUri: 'https://rc.example.com/integrations/gitlab/callback',
        state: 's+1',
        codeChallenge: 'ch',
      }),
    );
    expect(url.origin + url.pathname).toBe('https://git.example.com/gitlab/oauth/authorize');
    expect(Object.fromEntries(url.searchParams)).toEqual({
      client_id: 'cid',
      redirect_uri: 'https://rc.example.com/integrations/gitlab/callback',
      response_type: 'code',
      state: 's+1',
      scope: 'api read_user write_repository',
      code_challenge: 'ch',
      code_challenge_method: 'S256',
    });
    expect(url.search).toContain('scope=api%20read_user%20write_repository');
    // `api` is what project access tokens need; nothing broader (sudo, admin_mode) is asked for.
    expect(GITLAB_SCOPES.split(' ').sort()).toEqual(['api', 'read_user', 'write_repository']);
  });
});

describe('parseTokenResponse', () => {
  const now = Date.parse('2026-05-01T12:00:00Z');

  it('computes expiry from GitLab created_at + expires_in', () => {
    const created = now / 1000 - 100;
    const tokens = parseTokenResponse(
      { access_token: 'a'.repeat(64), refresh_token: 'r'.repeat(64), expires_in: 7200, created_at: created },
      now,
    );
    expect(tokens).toEqual({ accessToken: 'a'.repeat(64), refreshToken: 'r'.repeat(64), expiresAt: new Date((created + 7200) * 1000) });
  });

  it('falls back to now + expires_in, and keeps the old refresh token when none comes back', () => {
    const tokens = parseTokenResponse({ access_token: 'a', expires_in: 60 }, now, 'old-refresh');
    expect(tokens.expiresAt).toEqual(new Date(now + 60_000));
    expect(tokens.refreshToken).toBe('old-refresh');
  });

  it('rejects a response without tokens', () => {
    expect(() => parseTokenResponse({ expires_in: 60 }, now)).toThrow(expect.objectContaining({ code: 'provider_unavailable' }));
  });
});

describe('classifyGitlabTokenFailure', () => {
  it('maps invalid_grant to reconnect_required', () => {
    const err = classifyGitlabTokenFailure(
      { status: 400, body: { error: 'invalid_grant', error_description: 'The provided authorization grant is invalid' } },
      'refreshing',
    );
    expect([err.code, err.retryable]).toEqual(['reconnect_required', false]);
  });

  it('maps invalid_client to an operator message about the OAuth application', () => {
    const err = classifyGitlabTokenFailure({ status: 401, body: { error: 'invalid_client' } }, 'refreshing');
    expect(err.code).toBe('provider_unavailable');
    expect(err.message).toContain('GITLAB_CLIENT_ID and GITLAB_CLIENT_SECRET');
  });

  it.each([[{ status: 503 }], [{ status: 429, headers: { 'retry-after': '12' } }], [{ message: 'timed out' }]])(
    '%j → provider_unavailable',
    (failure) => {
      const err = classifyGitlabTokenFailure(failure, 'refreshing');
      expect(err.code).toBe('provider_unavailable');
      if ('status' in failure && failure.status === 429) expect(err.retryAfterSeconds).toBe(12);
    },
  );
});

describe('classifyGitlabApiFailure', () => {
  it('maps a rejected token to invalid_credentials and missing scopes to reconnect_required', () => {
    expect(classifyGitlabApiFailure({ status: 401, body: { message: '401 Unauthorized' } }, 'reading the user').code).toBe(
      'invalid_credentials',
    );
    expect(classifyGitlabApiFailure({ status: 403, body: { error: 'insufficient_scope' } }, 'listing').code).toBe('reconnect_required');
  });

  it('points at the base URL on 404 and redacts token-shaped text', () => {
    const token = 'f'.repeat(64);
    const err = classifyGitlabApiFailure({ status: 404, body: { message: `404 Not Found ${token}` } }, 'listing');
    expect(err.code).toBe('provider_unavailable');
    expect(err.message).toContain('GITLAB_URL');
    expect(err.message).not.toContain(token);
  });
});

describe('project mapping', () => {
  const project = {
    id: 3,
    name: 'My API',
    path: 'my-api',
    path_with_namespace: 'acme/backend/my-api',
    visibility: 'internal',
    default_branch: 'develop',
    http_url_to_repo: 'https://git.example.com/gitlab/acme/backend/my-api.git',
    archived: false,
  };

  it('uses the URL path as name and treats internal as private', () => {
    expect(toPlatformProject(project)).toEqual({
      id: 3,
      name: 'my-api',
      full_name: 'acme/backend/my-api',
      private: true,
      default_branch: 'develop',
      clone_url: 'https://git.example.com/gitlab/acme/backend/my-api.git',
      platform: 'gitlab',
    });
    expect(toPlatformProject({ ...project, visibility: 'public' }).private).toBe(false);
  });

  it('drops archived projects and reads X-Next-Page', () => {
    expect(activeProjects([project, { ...project, id: 4, archived: true }]).map((p) => p.id)).toEqual([3]);
    expect([nextPage('2'), nextPage(''), nextPage(null), nextPage('x')]).toEqual([2, undefined, undefined, undefined]);
  });
});
