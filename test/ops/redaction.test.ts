// Log redaction: secrets in the shapes the service actually logs (request headers, provider error
// objects, grants, config, request bodies) come out censored, and a debug-level API run with
// bearer headers, cookies and a sign-in form writes none of them. The run-wide scan in global
// teardown covers what paths cannot (a token inside a message string).
import { randomUUID } from 'node:crypto';
import { createCore, type Core } from '../../lib/core';
import { createLogger } from '../../lib/logger';
import { createMetrics } from '../../lib/metrics';
import { startApi, type RunningApi } from '../../api/server';
import { testConfig, testTemporalAddress } from '../helpers/test-env';
import { appendRunLog, logFileName } from '../helpers/test-logs';

function memoryLogger(level: string) {
  const lines: string[] = [];
  const file = logFileName('redaction');
  const logger = createLogger(level, {
    write(line: string) {
      lines.push(line);
      appendRunLog(file, line);
    },
  });
  return { logger, lines };
}

const secret = (name: string) => `${name}-${randomUUID()}`;

describe('the redaction paths', () => {
  it.each([
    [
      'an incoming request',
      (s: string) => ({ req: { method: 'GET', url: '/x', headers: { authorization: `Bearer ${s}`, cookie: `rc_session=${s}` } } }),
    ],
    ['a response setting a cookie', (s: string) => ({ res: { statusCode: 303, headers: { 'set-cookie': `rc_session=${s}; HttpOnly` } } })],
    ['bare headers', (s: string) => ({ headers: { authorization: `token ${s}`, Cookie: 'harmless', cookie: s } })],
    ['a provider answer', (s: string) => ({ token: s, access_token: s, refresh_token: s, expires_in: 7200 })],
    ['a GitLab grant', (s: string) => ({ integration: 'i-1', grant: { accessToken: s, refreshToken: s } })],
    ['a push body', (s: string) => ({ push: { body: { rig_id: 'r', token: s, generation: 2 } } })],
    ['a container token', (s: string) => ({ dispatch: { container_token: s, containerToken: s } })],
    [
      'an octokit error',
      (s: string) => ({ err: { name: 'RequestError', request: { headers: { authorization: `token ${s}` } }, response: { headers: {} } } }),
    ],
    [
      'the GitHub app config',
      (s: string) => ({ config: { github: { apps: { standard: { appId: '1', privateKey: `-----BEGIN PRIVATE KEY-----\n${s}` } } } } }),
    ],
    ['a PEM under private_key', (s: string) => ({ app: { private_key: s } })],
    ['OAuth client settings', (s: string) => ({ gitlab: { clientId: 'rc', clientSecret: s, client_secret: s } })],
    ['a git-auth body', (s: string) => ({ body: { tokens: [{ host: 'github.com', token: s, username: 'bot' }] } })],
    ['a password', (s: string) => ({ db: { password: s } })],
  ])('censors secrets in %s', (_what, make) => {
    const { logger, lines } = memoryLogger('debug');
    const s = secret('s3cr3t');
    logger.info(make(s), 'logged');
    const line = lines.join('');
    expect(line).toContain('"msg":"logged"');
    expect(line).not.toContain(s);
    expect(line).toContain('[redacted]');
  });

  it('keeps what operators need', () => {
    const { logger, lines } = memoryLogger('info');
    logger.info(
      { dispatchId: 'd-1', generation: 3, fingerprint: 'sha256:abcd', expires_at: '2026-01-01T00:00:00Z', host: 'github.com' },
      'pushed',
    );
    const entry = JSON.parse(lines[0]) as Record<string, unknown>;
    expect(entry).toMatchObject({ dispatchId: 'd-1', generation: 3, fingerprint: 'sha256:abcd', host: 'github.com' });
  });
});

describe('a debug-level API', () => {
  let core: Core;
  let api: RunningApi;
  let lines: string[];

  beforeAll(async () => {
    const mem = memoryLogger('debug');
    lines = mem.lines;
    const config = testConfig({ TEMPORAL_ADDRESS: testTemporalAddress(), LOG_LEVEL: 'debug' });
    core = await createCore(config, { logger: mem.logger, metrics: createMetrics({ defaults: false }), dbPoolSize: 2 });
    api = await startApi(core, { logger: mem.logger });
  });
  afterAll(async () => {
    await api?.close();
    await core?.close();
  });

  it('writes request logs without the bearer headers, cookies, sign-in form or the session it sets', async () => {
    const admin = core.config.adminApiToken;
    const cookie = secret('cookie');
    const container = secret('container');

    const town = await fetch(`${api.url}/api/towns/${randomUUID()}`, {
      headers: { authorization: `Bearer ${admin}`, cookie: `rc_session=${cookie}` },
    });
    expect(town.status).toBe(404);
    const pulled = await fetch(`${api.url}/api/internal/rigs/${randomUUID()}/git-token`, {
      method: 'POST',
      headers: { authorization: `Bearer ${container}` },
    });
    expect(pulled.status).toBe(401);
    const login = await fetch(`${api.url}/login`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: admin }),
    });
    expect(login.status).toBe(303);
    const session = /rc_session=([^;]+)/.exec(login.headers.get('set-cookie') ?? '')?.[1];
    expect(session).toBeTruthy();
    const page = await fetch(`${api.url}/`, { headers: { cookie: `rc_session=${session}` } });
    expect(page.status).toBe(200);
    // Code that logs a request object with its headers is censored too.
    api.app.log.debug(
      { req: { headers: { authorization: `Bearer ${container}`, cookie: `rc_session=${session}` } } },
      'manual request log',
    );

    const all = lines.join('');
    // Requests were logged (the pull route is a machine route and logs no lines of its own).
    const logged = lines
      .filter((l) => l.includes('"msg":"incoming request"'))
      .map((l) => (JSON.parse(l) as { req: { url: string } }).req.url);
    expect(logged).toEqual(expect.arrayContaining([expect.stringMatching(/^\/api\/towns\//), '/login', '/']));
    expect(all).toContain('manual request log');
    for (const s of [admin, cookie, container, session!]) expect(all).not.toContain(s);
  });
});
