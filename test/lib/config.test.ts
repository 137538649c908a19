import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig } from '../../lib/config';
import { createTestPki } from '../helpers/test-certs';

const key = randomBytes(32).toString('base64');
const pem = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
const minimal = { ADMIN_API_TOKEN: 'a'.repeat(24), SECRETS_KEY: key };

function problems(env: Record<string, string | undefined>): string[] {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig', () => {
  it('applies the contract defaults', () => {
    const c = loadConfig(minimal);
    expect(c).toMatchObject({
      databaseUrl: 'postgresql://postgres@127.0.0.1:5432/repo_connect',
      temporal: {
        address: '127.0.0.1:7233',
        namespace: 'default',
        taskQueue: 'git-tokens',
        hotTaskQueue: 'git-tokens-hot',
        sleepingTaskQueue: 'git-tokens-sleeping',
      },
      port: 8080,
      host: '127.0.0.1',
      publicUrl: 'http://127.0.0.1:8080',
      github: { apiUrl: 'https://api.github.com', apps: {} },
      gitlab: { url: 'https://gitlab.com' },
      tokenRefreshMarginSeconds: 300,
      apiAllocationSitePretenuring: false,
      worker: {
        maxCachedWorkflows: 2000,
        maxConcurrentActivities: 100,
        heapGrowthPercent: 10,
        workflowSemiSpaceMb: 2,
        sleepingAfterSeconds: 600,
        sleepingCachedWorkflows: 50,
      },
    });
    expect(c.secretsKeys[0]).toHaveLength(32);
  });

  it('names every missing or bad variable at once', () => {
    const found = problems({
      PORT: 'eighty',
      TEMPORAL_ADDRESS: 'nope',
      SECRETS_KEY: 'short',
      GITHUB_API_URL: 'ftp://x',
      TOKEN_REFRESH_MARGIN_SECONDS: '-1',
    });
    const names = found.map((p) => p.split(' ')[0]).sort();
    expect(names).toEqual(['ADMIN_API_TOKEN', 'GITHUB_API_URL', 'PORT', 'SECRETS_KEY', 'TEMPORAL_ADDRESS', 'TOKEN_REFRESH_MARGIN_SECONDS']);
    expect(found).toContain('ADMIN_API_TOKEN is required');
    expect(found.find((p) => p.startsWith('SECRETS_KEY'))).toMatch(/32 bytes/);
  });

  it('requires each GitHub app to be configured completely, with a usable key, inline or from a file', () => {
    expect(problems({ ...minimal, GITHUB_APP_ID: '123' })).toEqual([
      'GITHUB_APP_PRIVATE_KEY is required when any of GITHUB_APP_ID, GITHUB_APP_PRIVATE_KEY, GITHUB_APP_SLUG is set',
      'GITHUB_APP_SLUG is required when any of GITHUB_APP_ID, GITHUB_APP_PRIVATE_KEY, GITHUB_APP_SLUG is set',
    ]);
    expect(
      problems({ ...minimal, GITHUB_LITE_APP_ID: 'abc', GITHUB_LITE_APP_PRIVATE_KEY: '-----BEGIN nonsense', GITHUB_LITE_APP_SLUG: 's' }),
    ).toEqual(['GITHUB_LITE_APP_ID must be the numeric app id', 'GITHUB_LITE_APP_PRIVATE_KEY is not a valid PEM private key']);
    const file = join(mkdtempSync(join(tmpdir(), 'rc-')), 'app.pem');
    writeFileSync(file, pem);
    const c = loadConfig({
      ...minimal,
      GITHUB_APP_ID: '1',
      GITHUB_APP_PRIVATE_KEY: file,
      GITHUB_APP_SLUG: 'std',
      GITHUB_LITE_APP_ID: '2',
      GITHUB_LITE_APP_PRIVATE_KEY: pem.replace(/\n/g, '\\n'),
      GITHUB_LITE_APP_SLUG: 'lite',
    });
    expect(c.github.apps.standard).toMatchObject({ appId: '1', slug: 'std', privateKey: pem });
    expect(c.github.apps.lite).toMatchObject({ appId: '2', slug: 'lite', privateKey: pem });
    expect(problems({ ...minimal, GITHUB_APP_ID: '1', GITHUB_APP_PRIVATE_KEY: '/no/such/file.pem', GITHUB_APP_SLUG: 's' })).toEqual([
      'GITHUB_APP_PRIVATE_KEY is neither PEM text nor a readable file (/no/such/file.pem)',
    ]);
    // A key in another form (base64, as secret stores hand it out) is refused without being repeated.
    const b64 = Buffer.from(pem).toString('base64');
    const refused = problems({ ...minimal, GITHUB_APP_ID: '1', GITHUB_APP_PRIVATE_KEY: b64, GITHUB_APP_SLUG: 's' });
    expect(refused).toEqual([
      'GITHUB_APP_PRIVATE_KEY is neither PEM text nor a readable file (not shown; it looks like base64: give the PEM text or a path)',
    ]);
    const raw = pem.split('\n').slice(1, -2).join('');
    expect(problems({ ...minimal, GITHUB_APP_ID: '1', GITHUB_APP_PRIVATE_KEY: raw, GITHUB_APP_SLUG: 's' }).join()).not.toContain(
      raw.slice(0, 20),
    );
  });

  it('needs the GitLab client id and secret together, and PUBLIC_URL in production', () => {
    expect(problems({ ...minimal, GITLAB_CLIENT_ID: 'x' })).toEqual(['GITLAB_CLIENT_ID and GITLAB_CLIENT_SECRET must be set together']);
    // A production admin token must look generated (test/security/admin-token-strength.test.ts).
    expect(problems({ ...minimal, ADMIN_API_TOKEN: randomBytes(32).toString('hex'), NODE_ENV: 'production' })).toEqual([
      'PUBLIC_URL is required in production (OAuth redirect URIs are built from it)',
    ]);
  });

  it('refuses in production provider URLs over plain http off this machine, and a made-up SECRETS_KEY', () => {
    const prod = { ...minimal, ADMIN_API_TOKEN: randomBytes(32).toString('hex'), NODE_ENV: 'production', PUBLIC_URL: 'https://rc.example' };
    expect(() => loadConfig(prod)).not.toThrow();
    const plain = {
      ...prod,
      GITHUB_API_URL: 'http://ghe.internal/api/v3',
      GITLAB_URL: 'http://gitlab.internal',
      GITLAB_ALLOWED_URLS: 'https://ok.example, http://10.0.0.5',
    };
    expect(problems(plain)).toEqual([
      'GITHUB_API_URL must be https in production (plain http only to a loopback host, or to a host PROVIDER_HTTP_ALLOW names)',
      'GITLAB_URL must be https in production (plain http only to a loopback host, or to a host PROVIDER_HTTP_ALLOW names)',
      'GITLAB_ALLOWED_URLS must be https in production (plain http only to a loopback host, or to a host PROVIDER_HTTP_ALLOW names)',
    ]);
    // Outside production, and to this machine, plain http stays allowed (the tests and the bench).
    expect(() => loadConfig({ ...plain, NODE_ENV: 'development' })).not.toThrow();
    const loopback = {
      GITHUB_API_URL: 'http://127.0.0.1:9000',
      GITLAB_URL: 'http://localhost:9001',
      GITLAB_ALLOWED_URLS: 'http://[::1]:9002',
    };
    expect(() => loadConfig({ ...prod, ...loopback })).not.toThrow();
    // Hosts the operator names may be plain http (a GitLab inside the cluster, a mesh adding TLS).
    expect(() => loadConfig({ ...plain, PROVIDER_HTTP_ALLOW: 'GHE.internal, gitlab.internal,10.0.0.5' })).not.toThrow();
    expect(problems({ ...plain, PROVIDER_HTTP_ALLOW: 'gitlab.internal' })).toHaveLength(2);

    const madeUp = Buffer.from('abcdefgh'.repeat(4)).toString('base64');
    expect(problems({ ...prod, SECRETS_KEY: madeUp })).toEqual([
      'SECRETS_KEY must be random in production (it has fewer than 16 distinct bytes; generate one with: openssl rand -base64 32)',
    ]);
    expect(problems({ ...prod, SECRETS_KEY: Buffer.alloc(32).toString('base64') })).toHaveLength(1);
    expect(() => loadConfig({ ...minimal, SECRETS_KEY: madeUp })).not.toThrow();
  });

  it('lists the GitLab base URLs an integration may name: GITLAB_URL and GITLAB_ALLOWED_URLS, canonical', () => {
    expect(loadConfig(minimal).gitlab.allowedUrls).toEqual(['https://gitlab.com']);
    const c = loadConfig({
      ...minimal,
      GITLAB_URL: 'https://GitLab.example.com/',
      GITLAB_ALLOWED_URLS: 'https://gitlab.com:443, http://git.internal/gitlab/ ,',
    });
    expect(c.gitlab.allowedUrls).toEqual(['https://gitlab.example.com', 'https://gitlab.com', 'http://git.internal/gitlab']);
    expect(
      problems({ ...minimal, GITLAB_ALLOWED_URLS: 'https://ok.example, ftp://files.example, https://u:p@gitlab.example, nope' }),
    ).toEqual([
      'GITLAB_ALLOWED_URLS (a comma-separated list of http(s) base URLs): ftp://files.example must be an http(s) URL',
      'GITLAB_ALLOWED_URLS (a comma-separated list of http(s) base URLs): https://***@gitlab.example must not contain credentials, a query or a fragment',
      'GITLAB_ALLOWED_URLS (a comma-separated list of http(s) base URLs): nope must be a URL',
    ]);
  });

  it('validates CONTAINER_URL_ALLOW at boot: host names, *.suffix, IP addresses and CIDRs', () => {
    expect(
      loadConfig({ ...minimal, CONTAINER_URL_ALLOW: 'agent-1, *.agents.internal, 10.0.0.0/8, fd00::/8, 192.0.2.7' }).containerUrlAllow,
    ).toBe('agent-1, *.agents.internal, 10.0.0.0/8, fd00::/8, 192.0.2.7');
    expect(problems({ ...minimal, CONTAINER_URL_ALLOW: 'ok.example, 10.0.0.0/33, http://x, *.' })).toEqual([
      'CONTAINER_URL_ALLOW entry 10.0.0.0/33 is neither a host name, a *.suffix nor an IP address or CIDR',
      'CONTAINER_URL_ALLOW entry http://x is neither a host name, a *.suffix nor an IP address or CIDR',
      'CONTAINER_URL_ALLOW entry *. is neither a host name, a *.suffix nor an IP address or CIDR',
    ]);
  });

  it("needs each GitHub App's OAuth client id and secret together (sign-in and user-verified installs)", () => {
    expect(problems({ ...minimal, GITHUB_APP_CLIENT_ID: 'Iv1.abc' })).toEqual([
      'GITHUB_APP_CLIENT_ID and GITHUB_APP_CLIENT_SECRET must be set together',
    ]);
    expect(problems({ ...minimal, GITHUB_APP_CLIENT_SECRET: 's', GITHUB_LITE_APP_CLIENT_ID: 'Iv1.def' })).toEqual([
      'GITHUB_APP_CLIENT_ID and GITHUB_APP_CLIENT_SECRET must be set together',
      'GITHUB_LITE_APP_CLIENT_ID and GITHUB_LITE_APP_CLIENT_SECRET must be set together',
    ]);
    expect(loadConfig(minimal).github.oauthClients).toEqual({});
    expect(loadConfig({ ...minimal, GITHUB_APP_CLIENT_ID: 'Iv1.abc', GITHUB_APP_CLIENT_SECRET: 's' }).github.oauthClients).toEqual({
      standard: { clientId: 'Iv1.abc', clientSecret: 's' },
    });
    expect(loadConfig(minimal).loginRateLimitPerMinute).toBe(20);
    expect(problems({ ...minimal, LOGIN_RATE_LIMIT_PER_MINUTE: '0' })[0]).toMatch(/^LOGIN_RATE_LIMIT_PER_MINUTE /);
  });

  it('bounds the GitLab project token timings: idle, retry, and a rotation at least daily', () => {
    expect(loadConfig(minimal).projectTokens).toEqual({ idleSeconds: 3600, retrySeconds: 3600, rotateSeconds: 86_400 });
    const found = problems({
      ...minimal,
      GITLAB_PROJECT_TOKEN_IDLE_SECONDS: '0',
      GITLAB_PROJECT_TOKEN_RETRY_SECONDS: 'soon',
      GITLAB_PROJECT_TOKEN_ROTATE_SECONDS: '172800',
    });
    expect(found.map((p) => p.split(' ')[0]).sort()).toEqual([
      'GITLAB_PROJECT_TOKEN_IDLE_SECONDS',
      'GITLAB_PROJECT_TOKEN_RETRY_SECONDS',
      'GITLAB_PROJECT_TOKEN_ROTATE_SECONDS',
    ]);
    // A rotation no longer than a refresh's lead (margin, jitter, a second) would rotate at every mint.
    const near = { ...minimal, TOKEN_REFRESH_MARGIN_SECONDS: '300', REFRESH_JITTER_MAX_SECONDS: '60' };
    expect(problems({ ...near, GITLAB_PROJECT_TOKEN_ROTATE_SECONDS: '330' })).toEqual([
      'GITLAB_PROJECT_TOKEN_ROTATE_SECONDS must be more than TOKEN_REFRESH_MARGIN_SECONDS plus the refresh jitter and a second (334 s here), or every mint would rotate the project token',
    ]);
    expect(loadConfig({ ...near, GITLAB_PROJECT_TOKEN_ROTATE_SECONDS: '600' }).projectTokens.rotateSeconds).toBe(600);
  });

  it('names the worker deployment (versioning off unless asked for) and checks the names Temporal joins with a dot', () => {
    expect(loadConfig(minimal).temporal.deployment).toEqual({ name: 'repo-connect', buildId: undefined, versioning: false });
    expect(
      loadConfig({ ...minimal, TEMPORAL_WORKER_VERSIONING: 'true', TEMPORAL_DEPLOYMENT_NAME: 'rc-eu', TEMPORAL_BUILD_ID: '2026-12-04+abc' })
        .temporal.deployment,
    ).toEqual({ name: 'rc-eu', buildId: '2026-12-04+abc', versioning: true });
    expect(
      problems({ ...minimal, TEMPORAL_WORKER_VERSIONING: 'yes', TEMPORAL_DEPLOYMENT_NAME: 'rc.eu', TEMPORAL_BUILD_ID: 'v1.2' }),
    ).toEqual([
      'TEMPORAL_WORKER_VERSIONING must be true or false',
      'TEMPORAL_DEPLOYMENT_NAME must be 1-100 letters, digits, - or _',
      'TEMPORAL_BUILD_ID must be 1-200 letters, digits, -, _ or +',
    ]);
  });

  it('connects to Temporal over TLS when any TEMPORAL_TLS* variable or the API key is set, with PEM text or files', () => {
    const pki = createTestPki();
    expect(loadConfig(minimal).temporal).toMatchObject({ tls: false, apiKey: undefined });
    expect(loadConfig({ ...minimal, TEMPORAL_TLS: 'true' }).temporal.tls).toEqual({ serverName: undefined });
    const mtls = loadConfig({
      ...minimal,
      TEMPORAL_TLS_CA: pki.ca,
      TEMPORAL_TLS_CERT: pki.read(pki.clientCert).replace(/\n/g, '\\n'), // one .env line
      TEMPORAL_TLS_KEY: pki.clientKey,
      TEMPORAL_TLS_SERVER_NAME: 'temporal.test',
    }).temporal.tls;
    expect(mtls).toEqual({
      ca: pki.read(pki.ca),
      cert: pki.read(pki.clientCert),
      key: pki.read(pki.clientKey),
      serverName: 'temporal.test',
    });
    // Temporal Cloud: an API key needs TLS, with the system's CAs.
    expect(loadConfig({ ...minimal, TEMPORAL_API_KEY: 'k', TEMPORAL_NAMESPACE: 'prod.acme1' }).temporal).toMatchObject({
      tls: { serverName: undefined },
      apiKey: 'k',
    });
  });

  it('refuses a client certificate without its key (or the wrong one), unparsable PEM, and TLS variables with TEMPORAL_TLS=false', () => {
    const pki = createTestPki();
    expect(problems({ ...minimal, TEMPORAL_TLS_CERT: pki.clientCert })).toEqual([
      'TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY must be set together (the client certificate and its private key, for mTLS)',
    ]);
    expect(problems({ ...minimal, TEMPORAL_TLS_KEY: pki.clientKey })).toEqual([
      'TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY must be set together (the client certificate and its private key, for mTLS)',
    ]);
    expect(problems({ ...minimal, TEMPORAL_TLS_CERT: pki.clientCert, TEMPORAL_TLS_KEY: pki.serverKey })).toEqual([
      'TEMPORAL_TLS_KEY is not the private key of TEMPORAL_TLS_CERT',
    ]);
    expect(
      problems({
        ...minimal,
        TEMPORAL_TLS_CA: '-----BEGIN CERTIFICATE-----\\nnot a certificate\\n-----END CERTIFICATE-----',
        TEMPORAL_TLS_CERT: '/nonexistent/client.crt',
        TEMPORAL_TLS_KEY: '-----BEGIN PRIVATE KEY-----\\ngarbage\\n-----END PRIVATE KEY-----',
      }),
    ).toEqual([
      'TEMPORAL_TLS_CA is not a valid PEM certificate',
      'TEMPORAL_TLS_CERT is neither PEM text nor a readable file (/nonexistent/client.crt)',
      'TEMPORAL_TLS_KEY is not a valid PEM private key',
    ]);
    expect(problems({ ...minimal, TEMPORAL_TLS: 'false', TEMPORAL_TLS_CA: pki.ca, TEMPORAL_API_KEY: 'k' })).toEqual([
      'TEMPORAL_TLS is false but TEMPORAL_TLS_CA, TEMPORAL_API_KEY need TLS',
    ]);
    expect(problems({ ...minimal, TEMPORAL_TLS: 'yes' })).toEqual(['TEMPORAL_TLS must be true or false']);
  });

  it('keeps previous secrets keys for decryption after a rotation', () => {
    const old = randomBytes(32).toString('base64');
    const c = loadConfig({ ...minimal, SECRETS_KEY_PREVIOUS: old });
    expect(c.secretsKeys.map((k) => k.toString('base64'))).toEqual([key, old]);
    expect(problems({ ...minimal, SECRETS_KEY_PREVIOUS: 'bad' })[0]).toMatch(/SECRETS_KEY_PREVIOUS/);
  });
});
