import { generateKeyPairSync } from 'node:crypto';
import { verifyAppJwt } from '../fakes/github-auth';
import {
  activeRepositories,
  createAppJwtSigner,
  classifyGithubFailure,
  githubInstallUrl,
  githubWebUrl,
  isRateLimited,
  redactSecrets,
  retryAfterSeconds,
  toGithubInstallation,
  toHttpFailure,
  toPlatformRepository,
} from '../../lib/providers/github-fns';

const now = Date.parse('2026-05-01T12:00:00Z');
const mintCtx = { kind: 'access_tokens' as const, action: 'minting', appType: 'standard' as const, nowMs: now };

describe('githubWebUrl / githubInstallUrl', () => {
  it('maps api.github.com to github.com/apps', () => {
    expect(githubWebUrl('https://api.github.com')).toBe('https://github.com');
    expect(githubInstallUrl('https://api.github.com/', 'repo-connect', 'a b&c')).toBe(
      'https://github.com/apps/repo-connect/installations/new?state=a%20b%26c',
    );
  });

  it('maps a GHES <origin>/api/v3 to <origin>/github-apps', () => {
    expect(githubWebUrl('https://ghe.example.com/api/v3/')).toBe('https://ghe.example.com');
    expect(githubInstallUrl('https://ghe.example.com:8443/api/v3', 'rc', 's1')).toBe(
      'https://ghe.example.com:8443/github-apps/rc/installations/new?state=s1',
    );
  });

  it('maps GHE.com data residency hosts', () => {
    expect(githubInstallUrl('https://api.acme.ghe.com', 'rc', 's')).toBe('https://acme.ghe.com/apps/rc/installations/new?state=s');
  });
});

describe('retryAfterSeconds / isRateLimited', () => {
  it('reads Retry-After as seconds or an HTTP date', () => {
    expect(retryAfterSeconds({ 'retry-after': '30' }, now)).toBe(30);
    expect(retryAfterSeconds({ 'retry-after': new Date(now + 45_000).toUTCString() }, now)).toBe(45);
  });

  it('falls back to x-ratelimit-reset only when the limit is exhausted', () => {
    const reset = String(now / 1000 + 120);
    expect(retryAfterSeconds({ 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': reset }, now)).toBe(120);
    expect(retryAfterSeconds({ 'x-ratelimit-remaining': '10', 'x-ratelimit-reset': reset }, now)).toBeUndefined();
    expect(retryAfterSeconds({}, now)).toBeUndefined();
  });

  it('tells rate limits from permission 403s', () => {
    expect(isRateLimited({ status: 429 })).toBe(true);
    expect(isRateLimited({ status: 403, headers: { 'x-ratelimit-remaining': '0' } })).toBe(true);
    expect(isRateLimited({ status: 403, message: 'You have exceeded a secondary rate limit' })).toBe(true);
    expect(isRateLimited({ status: 403, headers: { 'retry-after': '60' }, message: 'You have been temporarily blocked' })).toBe(true);
    expect(isRateLimited({ status: 403, message: 'You have triggered an abuse detection mechanism.' })).toBe(true);
    expect(isRateLimited({ status: 403, message: 'Resource not accessible by integration' })).toBe(false);
  });
});

describe('classifyGithubFailure', () => {
  it.each([
    [{ status: 404, message: 'Not Found' }, 'installation_not_found'],
    [{ status: 403, message: 'This installation has been suspended' }, 'installation_suspended'],
    [{ status: 422, message: 'There is at least one repository that does not exist' }, 'repository_not_accessible'],
    [{ status: 422, message: 'The permissions requested are not granted to this installation.' }, 'repository_not_accessible'],
    [{ status: 502, message: 'Bad Gateway' }, 'provider_unavailable'],
    [{ status: 429 }, 'provider_unavailable'],
    [{ message: 'connect ECONNREFUSED' }, 'provider_unavailable'],
  ])('%j on access_tokens → %s', (failure, code) => {
    expect(classifyGithubFailure(failure, mintCtx).code).toBe(code);
  });

  it('carries Retry-After and x-ratelimit-reset as retryAfterSeconds', () => {
    const limited = classifyGithubFailure({ status: 429, headers: { 'retry-after': '7' } }, mintCtx);
    expect([limited.code, limited.retryable, limited.retryAfterSeconds, limited.status]).toEqual(['provider_unavailable', true, 7, 429]);
    const secondary = classifyGithubFailure(
      {
        status: 403,
        message: 'You have exceeded a secondary rate limit',
        headers: { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': String(now / 1000 + 60) },
      },
      mintCtx,
    );
    expect([secondary.code, secondary.retryAfterSeconds]).toEqual(['provider_unavailable', 60]);
  });

  it('names the app variables when the JWT is rejected', () => {
    const standard = classifyGithubFailure({ status: 401, message: 'A JSON web token could not be decoded' }, mintCtx);
    expect(standard.code).toBe('provider_unavailable');
    expect(standard.message).toContain('GITHUB_APP_ID / GITHUB_APP_PRIVATE_KEY');
    const lite = classifyGithubFailure({ status: 401 }, { kind: 'app', action: 'reading', appType: 'lite' });
    expect(lite.message).toContain('GITHUB_LITE_APP_ID');
  });

  it('treats a 401 with an installation token as invalid credentials, not a JWT problem', () => {
    const err = classifyGithubFailure({ status: 401, message: 'Bad credentials' }, { kind: 'installation_token', action: 'verifying' });
    expect(err.code).toBe('invalid_credentials');
    expect(err.retryable).toBe(false);
  });

  it('never repeats a token the upstream message contained', () => {
    const token = `ghs_${'x'.repeat(300)}`;
    const jwt = 'eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiIxIn0.c2lnbmF0dXJl';
    const err = classifyGithubFailure({ status: 500, message: `boom ${token} ${jwt} token abcdefabcdefabcdef1234` }, mintCtx);
    expect(err.message).not.toContain(token.slice(0, 20));
    expect(err.message).not.toContain(jwt);
    expect(err.message).not.toContain('abcdefabcdefabcdef1234');
    expect(redactSecrets('Authorization: Bearer 0123456789abcdefXYZ.0123')).not.toContain('0123456789abcdef');
  });
});

describe('repository and installation mapping', () => {
  const repo = {
    id: 7,
    name: 'api',
    full_name: 'acme/api',
    private: true,
    default_branch: 'trunk',
    clone_url: 'https://ghe.example.com/acme/api.git',
    archived: false,
  };

  it('keeps clone_url exactly as GitHub gives it', () => {
    expect(toPlatformRepository(repo)).toEqual({
      id: 7,
      name: 'api',
      full_name: 'acme/api',
      private: true,
      default_branch: 'trunk',
      clone_url: 'https://ghe.example.com/acme/api.git',
      platform: 'github',
    });
  });

  it('leaves archived repositories out', () => {
    const list = activeRepositories([repo, { ...repo, id: 8, name: 'old', archived: true }]);
    expect(list.map((r) => r.id)).toEqual([7]);
  });

  it('maps installations, including enterprise accounts without a login', () => {
    expect(
      toGithubInstallation({
        id: 1,
        account: { login: 'acme', id: 5, type: 'Organization' },
        suspended_at: null,
        repository_selection: 'all',
      }),
    ).toEqual({
      id: 1,
      account: { login: 'acme', id: 5, type: 'Organization' },
      suspendedAt: null,
      repositorySelection: 'all',
    });
    expect(toGithubInstallation({ id: 2, account: { slug: 'big-corp', id: 9 }, suspended_at: '2026-01-01T00:00:00Z' }).account).toEqual({
      login: 'big-corp',
      id: 9,
      type: 'Enterprise',
    });
  });
});

describe('toHttpFailure', () => {
  it('reads status, headers and the JSON message of a response error', () => {
    const err = Object.assign(new Error('x'), {
      status: 403,
      response: { status: 403, headers: { 'x-ratelimit-remaining': '0' }, data: { message: 'API rate limit exceeded' } },
    });
    expect(toHttpFailure(err)).toEqual({ status: 403, headers: { 'x-ratelimit-remaining': '0' }, message: 'API rate limit exceeded' });
  });

  it('reports a response-less error as no status, naming timeouts', () => {
    const timeout = Object.assign(new Error('The operation was aborted due to timeout'), { status: 500, cause: { name: 'TimeoutError' } });
    expect(toHttpFailure(timeout)).toEqual({ message: 'timed out' });
    const refused = Object.assign(new Error('fetch failed'), {
      status: 500,
      cause: { name: 'Error', message: 'connect ECONNREFUSED 127.0.0.1:1' },
    });
    expect(toHttpFailure(refused)).toEqual({ message: 'connect ECONNREFUSED 127.0.0.1:1' });
  });
});

describe('createAppJwtSigner', () => {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const pem = privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();

  it('signs RS256 JWTs GitHub accepts: iss = app id, backdated iat, 10-minute exp', async () => {
    let clock = now;
    const signer = createAppJwtSigner(pem, () => clock);
    const { jwt, expiresAt } = await signer('12345');
    const claims = JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString());
    expect(claims).toEqual({ iat: now / 1000 - 30, exp: now / 1000 + 570, iss: 12345 });
    expect(expiresAt).toBe(new Date(now + 570_000).toISOString());
    expect(verifyAppJwt(`Bearer ${jwt}`, (id) => (id === '12345' ? publicKey : undefined), now / 1000)).toEqual({
      ok: true,
      appId: '12345',
    });
    clock = now + 5 * 60_000;
    expect(verifyAppJwt(`Bearer ${jwt}`, () => publicKey, clock / 1000).ok).toBe(true);
  });

  it('reuses a JWT for a few minutes, then signs a new one; a clock skew gets its own', async () => {
    let clock = now;
    const signer = createAppJwtSigner(pem, () => clock);
    const first = await signer('1');
    clock = now + 4 * 60_000;
    expect((await signer('1')).jwt).toBe(first.jwt);
    const skewed = await signer('1', 120);
    expect(skewed.jwt).not.toBe(first.jwt);
    clock = now + 5 * 60_000;
    // Asked without a skew, the one given last applies (auth-app asks without one after its retry):
    // the skewed JWT, still fresh, is reused.
    expect((await signer('1')).jwt).toBe(skewed.jwt);
    // A difference of 0 given (a later retry found the clocks agree) goes back to this clock: a new
    // JWT, the first one's reuse being over.
    const renewed = await signer('1', 0);
    expect([renewed.jwt === first.jwt, renewed.jwt === skewed.jwt]).toEqual([false, false]);
    expect(Date.parse(renewed.expiresAt) - clock).toBe(570_000);
  });

  it('keeps a skew auth-app found, so a skewed clock costs one refused request, not one per request', async () => {
    const clock = now;
    const signer = createAppJwtSigner(pem, () => clock);
    // GitHub's clock is 2 minutes behind: a JWT from our clock is refused ("iat" in its future).
    const github = now / 1000 - 120;
    const accepted = async (timeDifference?: number) =>
      verifyAppJwt(`Bearer ${(await signer('7', timeDifference)).jwt}`, () => publicKey, github).ok;
    expect(await accepted()).toBe(false);
    expect(await accepted(-120)).toBe(true); // auth-app's retry with the difference
    expect(await accepted()).toBe(true); // the next request, asked without one
    expect(await accepted()).toBe(true);
  });
});
