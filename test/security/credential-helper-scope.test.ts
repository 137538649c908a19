// Item 7 of the security review: with REPO_CONNECT_GIT_HOST unset the credential helper gave the
// dispatch's token to any host git asked about, and to any protocol, plain http included. Now it
// answers only the configured hosts, over https unless a host is configured as http://host.
import { join } from 'node:path';
import { FakeRepoConnect } from '../container-kit/fake-service';
import { configLib, expiresIn, parseAnswer, runHelperBin, tempDir } from '../container-kit/kit';

const RIG = 'rig-scope';
const CONTAINER_TOKEN = 'ct_scope_test_0123456789abcdef';
const TOKEN = 'ghs_scope_token_generation_1';

let tmp: ReturnType<typeof tempDir>;
let service: FakeRepoConnect;
let env: Record<string, string>;

beforeEach(async () => {
  tmp = tempDir();
  service = await FakeRepoConnect.start({
    rigId: RIG,
    containerToken: CONTAINER_TOKEN,
    current: { token: TOKEN, expires_at: expiresIn(3600), username: 'x-access-token', generation: 1 },
  });
  env = {
    HOME: tmp.dir,
    REPO_CONNECT_URL: service.url,
    REPO_CONNECT_RIG_ID: RIG,
    REPO_CONNECT_CONTAINER_TOKEN: CONTAINER_TOKEN,
    REPO_CONNECT_TOKEN_FILE: join(tmp.dir, 'git-token.json'),
  };
});
afterEach(async () => {
  await service.close();
  tmp.cleanup();
});

const get = (request: string, extra: Record<string, string> = {}) => runHelperBin('get', `${request}\n\n`, { ...env, ...extra });

describe('git-credential-repo-connect scope', () => {
  it('answers no host at all while REPO_CONNECT_GIT_HOST is unset, and says why', async () => {
    const run = await get('protocol=https\nhost=evil.example');
    expect(run.stdout).toBe('');
    expect(run.stderr).toContain('REPO_CONNECT_GIT_HOST is not set');
    expect(service.requests).toHaveLength(0); // not even a pull
  });

  it('answers only the configured hosts', async () => {
    const hosts = { REPO_CONNECT_GIT_HOST: 'github.com' };
    for (const host of ['evil.example', 'github.com.evil.example', 'api.github.com', 'github.com:8443']) {
      expect((await get(`protocol=https\nhost=${host}`, hosts)).stdout).toBe('');
    }
    expect(service.requests).toHaveLength(0);
    expect(parseAnswer((await get('protocol=https\nhost=github.com', hosts)).stdout).password).toBe(TOKEN);
  });

  it('never answers plain http, or a request without a protocol, for a host configured without http://', async () => {
    const hosts = { REPO_CONNECT_GIT_HOST: 'github.com' };
    const http = await get('protocol=http\nhost=github.com', hosts);
    expect(http.stdout).toBe('');
    expect(http.stderr).toContain('refusing http protocol for github.com: only https');
    expect((await get('host=github.com', hosts)).stdout).toBe('');
    expect((await get('protocol=ssh\nhost=github.com', hosts)).stdout).toBe('');
    expect(service.requests).toHaveLength(0);
    expect(http.stderr).not.toContain(TOKEN);
  });

  it('allows plain http only for a host configured as http://host', async () => {
    const hosts = { REPO_CONNECT_GIT_HOST: 'http://git.internal:8080, github.com' };
    expect(parseAnswer((await get('protocol=http\nhost=git.internal:8080', hosts)).stdout).password).toBe(TOKEN);
    expect(parseAnswer((await get('protocol=https\nhost=git.internal:8080', hosts)).stdout).password).toBe(TOKEN);
    expect((await get('protocol=http\nhost=github.com', hosts)).stdout).toBe('');
    const { config } = configLib.loadConfig(hosts);
    expect(config.gitHosts).toEqual(['git.internal:8080', 'github.com']);
  });
});
