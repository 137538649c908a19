// git-credential-repo-connect run as git runs it (a child process, request on stdin) against a fake
// repo-connect pull endpoint over real HTTP.
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { FakeRepoConnect } from './fake-service';
import { configLib, expiresIn, helperLib, parseAnswer, runHelperBin, tempDir, tokenFileLib, type RunResult } from './kit';

const RIG = 'rig-8a2e';
const CONTAINER_TOKEN = 'ct_helper_test_fedcba9876543210';
const REQUEST = 'protocol=https\nhost=github.com\npath=acme/widgets.git\n\n';

let tmp: ReturnType<typeof tempDir>;
let tokenFile: string;
let service: FakeRepoConnect;
let env: Record<string, string>;

beforeEach(async () => {
  tmp = tempDir();
  tokenFile = join(tmp.dir, '.repo-connect', 'git-token.json');
  service = await FakeRepoConnect.start({
    rigId: RIG,
    containerToken: CONTAINER_TOKEN,
    current: { token: 'ghs_pulled_generation_4', expires_at: expiresIn(3600), username: 'x-access-token', generation: 4 },
  });
  env = {
    HOME: tmp.dir,
    REPO_CONNECT_URL: service.url,
    REPO_CONNECT_RIG_ID: RIG,
    REPO_CONNECT_CONTAINER_TOKEN: CONTAINER_TOKEN,
    REPO_CONNECT_GIT_HOST: 'github.com',
  };
});

afterEach(async () => {
  await service.close();
  tmp.cleanup();
});

/** Writes the file as the receiver would after a push of this dispatch. */
async function pushed(token: string, expires_at: string | null, generation = 3, containerToken = CONTAINER_TOKEN) {
  await tokenFileLib.writeTokenRecord(tokenFile, {
    token,
    expires_at,
    username: 'x-access-token',
    generation,
    rig_id: RIG,
    dispatch_id: 'd-1',
    container_token_sha256: tokenFileLib.sha256Hex(containerToken),
    source: 'push',
    written_at: new Date().toISOString(),
  });
}

/** A failed `get`: nothing for git, exit 0, one stderr line that carries no secret. */
function expectCleanFailure(run: RunResult, reason: string | RegExp) {
  expect(run.code).toBe(0);
  expect(run.stdout).toBe('');
  expect(run.stderr.trimEnd().split('\n')).toHaveLength(1);
  expect(run.stderr).toMatch(reason);
  expect(run.stderr).toMatch(/^git-credential-repo-connect: /);
  for (const secret of [CONTAINER_TOKEN, 'ghs_pulled', 'ghs_cached']) expect(run.stderr).not.toContain(secret);
}

describe('git-credential-repo-connect get', () => {
  it('answers from a fresh pushed token without calling the service', async () => {
    const expiresAt = expiresIn(1800);
    await pushed('ghs_cached_fresh', expiresAt);
    const run = await runHelperBin('get', REQUEST, env);
    expect(run.code).toBe(0);
    expect(run.stderr).toBe('');
    expect(run.stdout).toBe(
      `username=x-access-token\npassword=ghs_cached_fresh\npassword_expiry_utc=${Math.floor(Date.parse(expiresAt) / 1000)}\n`,
    );
    expect(service.requests).toHaveLength(0);
  });

  it('answers a static token (expires_at null) forever, without password_expiry_utc', async () => {
    await pushed('ghp_static_town_token', null);
    const run = await runHelperBin('get', REQUEST, env);
    expect(parseAnswer(run.stdout)).toEqual({ username: 'x-access-token', password: 'ghp_static_town_token' });
    expect(service.requests).toHaveLength(0);
  });

  it('pulls when the cached token expires within the minimum validity, and caches the pull', async () => {
    await pushed('ghs_cached_expiring', expiresIn(30));
    const run = await runHelperBin('get', REQUEST, env);
    expect(run.stderr).toBe('');
    expect(parseAnswer(run.stdout)).toEqual({
      username: 'x-access-token',
      password: 'ghs_pulled_generation_4',
      password_expiry_utc: String(Math.floor(Date.parse(service.current.expires_at!) / 1000)),
    });
    // It says which generation it holds, so an API instance that has not heard of it yet reads Postgres.
    expect(service.requests).toEqual([
      {
        method: 'POST',
        path: `/api/internal/rigs/${RIG}/git-token`,
        authorization: `Bearer ${CONTAINER_TOKEN}`,
        generation: '3',
        contentLength: '0',
      },
    ]);
    expect(await tokenFileLib.readTokenFile(tokenFile)).toMatchObject({
      token: 'ghs_pulled_generation_4',
      generation: 4,
      source: 'pull',
      rig_id: RIG,
    });
    expect(statSync(tokenFile).mode & 0o777).toBe(0o600);

    // The pulled token is now the fresh cache: no second request.
    await runHelperBin('get', REQUEST, env);
    expect(service.requests).toHaveLength(1);
  });

  it('honours REPO_CONNECT_MIN_VALIDITY_SECONDS', async () => {
    await pushed('ghs_cached_30s_left', expiresIn(30));
    const run = await runHelperBin('get', REQUEST, { ...env, REPO_CONNECT_MIN_VALIDITY_SECONDS: '10' });
    expect(parseAnswer(run.stdout).password).toBe('ghs_cached_30s_left');
    expect(service.requests).toHaveLength(0);
  });

  it('pulls when there is no file, or a file from an earlier dispatch, and creates it 0600', async () => {
    const first = await runHelperBin('get', REQUEST, env);
    expect(parseAnswer(first.stdout).password).toBe('ghs_pulled_generation_4');
    expect(statSync(tokenFile).mode & 0o777).toBe(0o600);

    await pushed('ghs_cached_old_dispatch', expiresIn(3600), 9, 'ct_previous_dispatch_token');
    const second = await runHelperBin('get', REQUEST, env);
    expect(parseAnswer(second.stdout).password).toBe('ghs_pulled_generation_4');
    expect(service.requests).toHaveLength(2);
    // Neither pull claims a generation: there was none, then only an earlier dispatch's.
    expect(service.requests.map((r) => r.generation)).toEqual([undefined, undefined]);
  });

  it('answers with a newer push that landed while it was pulling', async () => {
    await pushed('ghs_cached_expired', expiresIn(-5), 3);
    service.beforeAnswer = () => pushed('ghs_cached_pushed_gen_5', expiresIn(3600), 5);
    const run = await runHelperBin('get', REQUEST, env);
    expect(parseAnswer(run.stdout).password).toBe('ghs_cached_pushed_gen_5');
    expect(await tokenFileLib.readTokenFile(tokenFile)).toMatchObject({ generation: 5, source: 'push' });
  });

  it('retries once after a 429 with a short Retry-After', async () => {
    service.rateLimited = 1;
    service.retryAfter = '1';
    const run = await runHelperBin('get', REQUEST, env);
    expect(parseAnswer(run.stdout).password).toBe('ghs_pulled_generation_4');
    expect(service.requests).toHaveLength(2);
    expect(run.ms).toBeGreaterThanOrEqual(1000);
  });

  it('does not wait out a long Retry-After', async () => {
    service.rateLimited = 5;
    service.retryAfter = '30';
    const run = await runHelperBin('get', REQUEST, env);
    expectCleanFailure(run, 'rate limited by repo-connect (429, retry after 30 s)');
    expect(service.requests).toHaveLength(1);
  });

  it.each([
    ['the dispatch ended (410)', () => (service.mode = 'ended'), 'dispatch ended (410)'],
    [
      'the provider fails (502)',
      () => (service.mode = 'provider_down'),
      'repo-connect could not supply a token (502, provider_unavailable: GitHub answered 503 Service Unavailable)',
    ],
    [
      'the container token is unknown (401)',
      () => (env.REPO_CONNECT_CONTAINER_TOKEN = 'ct_unknown_0000000000'),
      'container token not recognised by repo-connect (401)',
    ],
    [
      'the token belongs to another rig (403)',
      () => (env.REPO_CONNECT_RIG_ID = 'rig-other'),
      'container token belongs to another rig (403)',
    ],
    [
      'the service answers a token with a newline in it',
      () => (service.mode = 'bad_token'),
      'repo-connect answered 200 with an unusable token',
    ],
  ])('prints nothing and exits 0 when %s', async (_name, arrange, reason) => {
    await pushed('ghs_cached_expired', expiresIn(-60));
    arrange();
    expectCleanFailure(await runHelperBin('get', REQUEST, env), reason);
  });

  it('prints nothing and exits 0 when the service cannot be reached', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const { port } = closed.address() as { port: number };
    await new Promise((r) => closed.close(r));
    const run = await runHelperBin('get', REQUEST, { ...env, REPO_CONNECT_URL: `http://127.0.0.1:${port}` });
    expectCleanFailure(run, `cannot reach repo-connect at http://127.0.0.1:${port} (ECONNREFUSED)`);
  });

  it('gives up on a service that does not answer within the timeout', async () => {
    service.mode = 'hang';
    const out = await helperLib.runCredentialHelper({ operation: 'get', input: REQUEST, env, timeoutMs: 300 });
    expect(out).toEqual({
      stdout: '',
      stderr: `git-credential-repo-connect: repo-connect at ${service.url} did not answer within 0.3 s\n`,
    });
  });

  it('names the missing variables when it has neither a fresh token nor a way to pull', async () => {
    const run = await runHelperBin('get', REQUEST, { HOME: tmp.dir, REPO_CONNECT_RIG_ID: RIG, REPO_CONNECT_GIT_HOST: 'github.com' });
    expectCleanFailure(run, 'cannot pull one: set REPO_CONNECT_URL, REPO_CONNECT_CONTAINER_TOKEN (or REPO_CONNECT_CONTAINER_TOKEN_FILE)');
  });

  it('names every unusable variable at once', async () => {
    const run = await runHelperBin('get', REQUEST, { ...env, REPO_CONNECT_URL: 'ftp://x', REPO_CONNECT_MIN_VALIDITY_SECONDS: 'soon' });
    expectCleanFailure(run, /REPO_CONNECT_URL must be an http\(s\) URL; REPO_CONNECT_MIN_VALIDITY_SECONDS must be/);
  });

  it('reads the container token from REPO_CONNECT_CONTAINER_TOKEN_FILE', async () => {
    const file = join(tmp.dir, 'container-token');
    writeFileSync(file, `${CONTAINER_TOKEN}\n`, { mode: 0o600 });
    const { REPO_CONNECT_CONTAINER_TOKEN: _omit, ...rest } = env;
    const run = await runHelperBin('get', REQUEST, { ...rest, REPO_CONNECT_CONTAINER_TOKEN_FILE: file });
    expect(parseAnswer(run.stdout).password).toBe('ghs_pulled_generation_4');
  });

  it('stays silent for hosts other than REPO_CONNECT_GIT_HOST', async () => {
    await pushed('ghs_cached_fresh', expiresIn(3600));
    const other = await runHelperBin('get', 'protocol=https\nhost=gitlab.com\n\n', { ...env, REPO_CONNECT_GIT_HOST: 'github.com' });
    expect(other).toMatchObject({ code: 0, stdout: '', stderr: '' });
    const ours = await runHelperBin('get', 'protocol=https\nhost=GitHub.com\n\n', { ...env, REPO_CONNECT_GIT_HOST: 'github.com' });
    expect(parseAnswer(ours.stdout).password).toBe('ghs_cached_fresh');
    expect(service.requests).toHaveLength(0);
  });
});

describe('git-credential-repo-connect erase and store', () => {
  it('erase forgets the cached token only when git rejected that very token', async () => {
    await pushed('ghs_cached_rejected', expiresIn(3600), 4);
    const before = readFileSync(tokenFile, 'utf8');
    const other = await runHelperBin('erase', `${REQUEST.trimEnd()}\nusername=x-access-token\npassword=ghs_some_other_token\n\n`, env);
    expect(other).toMatchObject({ code: 0, stdout: '', stderr: '' });
    expect(readFileSync(tokenFile, 'utf8')).toBe(before);

    const same = await runHelperBin('erase', `${REQUEST.trimEnd()}\nusername=x-access-token\npassword=ghs_cached_rejected\n\n`, env);
    expect(same).toMatchObject({ code: 0, stdout: '', stderr: '' });
    const after = await tokenFileLib.readTokenFile(tokenFile);
    expect(after?.token).toBeUndefined();
    expect(after?.generation).toBe(4); // kept, so an older push cannot bring the rejected token back
    expect(readFileSync(tokenFile, 'utf8')).not.toContain('ghs_cached_rejected');

    // The next get pulls instead of handing git the rejected token again.
    service.rotate('ghs_pulled_generation_5', expiresIn(3600));
    const next = await runHelperBin('get', REQUEST, env);
    expect(parseAnswer(next.stdout).password).toBe('ghs_pulled_generation_5');
    expect(service.requests).toHaveLength(1);
    expect(service.requests[0].generation).toBe('4');
    expect(await tokenFileLib.readTokenFile(tokenFile)).toMatchObject({ generation: 5, token: 'ghs_pulled_generation_5' });
  });

  it('store is a no-op', async () => {
    const run = await runHelperBin('store', `${REQUEST.trimEnd()}\nusername=u\npassword=ghs_from_git\n\n`, env);
    expect(run).toMatchObject({ code: 0, stdout: '', stderr: '' });
    expect(() => statSync(tokenFile)).toThrow(/ENOENT/);
  });
});

describe('configuration', () => {
  it('defaults the token file under HOME, splits REPO_CONNECT_GIT_HOST and reads the rig id in lower case', () => {
    const { config, problems } = configLib.loadConfig({
      HOME: '/home/agent',
      REPO_CONNECT_GIT_HOST: 'GitHub.com, gitlab.example.com:8443',
      REPO_CONNECT_RIG_ID: '3F65A05F-8212-4E41-BDCA-95BCA20FC56A',
    });
    expect(problems).toEqual([]);
    expect(config.rigId).toBe('3f65a05f-8212-4e41-bdca-95bca20fc56a'); // as the service writes ids
    expect(config.tokenFile).toBe('/home/agent/.repo-connect/git-token.json');
    expect(config.gitHosts).toEqual(['github.com', 'gitlab.example.com:8443']);
    expect(config.minValiditySeconds).toBe(60);
  });

  it('refuses both container token variables at once', () => {
    const { problems } = configLib.loadConfig({ REPO_CONNECT_CONTAINER_TOKEN: 'a', REPO_CONNECT_CONTAINER_TOKEN_FILE: '/x' });
    expect(problems).toEqual(['set only one of REPO_CONNECT_CONTAINER_TOKEN and REPO_CONNECT_CONTAINER_TOKEN_FILE']);
  });
});
