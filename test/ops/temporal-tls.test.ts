// The service against an mTLS-only Temporal front: a TLS proxy that requires a client certificate
// signed by the test CA, in front of the suite's plaintext dev server. With the right CA and client
// certificate the API and the worker work through it (dispatch, token pushed, stop, /healthz);
// `npm start` with a wrong CA or without a client certificate stops with why, and never starts a
// dev server in place of a secured frontend.
import { spawn } from 'node:child_process';
import { connect as netConnect } from 'node:net';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:tls';
import { join } from 'node:path';
import { freePort, PROJECT_ROOT } from '../../scripts/temporal-cli';
import { FakeContainerHost } from '../fakes/container';
import { eventually, startHarness, type Harness } from '../helpers/harness';
import { dispatchTo, githubRig, githubWorld, type GithubWorld } from '../helpers/scenario';
import { createTestPki, type TestPki } from '../helpers/test-certs';
import { testDatabaseUrl, testTemporalAddress } from '../helpers/test-env';

let pki: TestPki;
let proxy: TlsServer;
let front: string;
/** Connections that presented a client certificate the front accepted. */
let authorized = 0;

beforeAll(async () => {
  pki = createTestPki();
  const [devHost, devPort] = testTemporalAddress().split(':');
  proxy = createTlsServer(
    {
      key: pki.read(pki.serverKey),
      cert: pki.read(pki.serverCert),
      ca: pki.read(pki.ca),
      requestCert: true,
      rejectUnauthorized: true,
      ALPNProtocols: ['h2'],
    },
    (socket) => {
      authorized++;
      const upstream = netConnect(Number(devPort), devHost);
      socket.pipe(upstream).pipe(socket);
      const close = () => {
        socket.destroy();
        upstream.destroy();
      };
      socket.on('error', close);
      upstream.on('error', close);
    },
  );
  proxy.on('tlsClientError', () => undefined); // refused handshakes are what some tests want
  const port = await freePort();
  await new Promise<void>((r) => proxy.listen(port, '127.0.0.1', r));
  front = `127.0.0.1:${port}`;
});

afterAll(async () => {
  await new Promise((r) => proxy?.close(r));
});

const mtlsEnv = () => ({
  TEMPORAL_ADDRESS: front,
  TEMPORAL_TLS_CA: pki.ca,
  TEMPORAL_TLS_CERT: pki.clientCert,
  TEMPORAL_TLS_KEY: pki.read(pki.clientKey), // PEM text here, paths above: both forms work
  TEMPORAL_TLS_SERVER_NAME: pki.serverName,
});

describe('with the right CA and client certificate', () => {
  let world: GithubWorld;
  let containers: FakeContainerHost;
  let h: Harness;

  beforeAll(async () => {
    world = await githubWorld({ tokenLifetimeSeconds: 30 });
    containers = await FakeContainerHost.start();
    h = await startHarness({ env: { ...world.env, ...mtlsEnv() } });
  });

  afterAll(async () => {
    await h?.close();
    await containers?.close();
    await world?.gh.close();
  });

  it('the API and the worker work through the front: dispatch, token pushed, stop; /healthz says Temporal is ok', async () => {
    expect(authorized).toBeGreaterThanOrEqual(2); // the API's client and the worker's connection
    const rig = await githubRig(h, world, { repos: 1 });
    const d = await dispatchTo(h, containers, rig.rigId, 'tls');
    const pushed = await containers.waitForPush(d.container, (p) => p.generation === 1, 20_000);
    expect(world.gh.isTokenLive(pushed.token, rig.repo.full_name, 'write')).toBe(true);
    expect((await h.call('POST', `/api/dispatches/${d.dispatchId}/stop`)).status).toBe(202);
    await eventually(async () => (await h.call<{ status: string }>('GET', `/api/dispatches/${d.dispatchId}`)).body.status === 'stopped');
    const health = await fetch(`${h.url}/healthz`);
    expect([health.status, await health.json()]).toEqual([200, { postgres: 'ok', temporal: 'ok' }]);
  });
});

/** Runs `npm start` (scripts/start.ts) against the front and returns how it ended. */
async function npmStart(env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(PROJECT_ROOT, 'scripts', 'start.ts')], {
    cwd: PROJECT_ROOT,
    env: {
      PATH: process.env.PATH,
      NODE_ENV: 'test',
      DATABASE_URL: testDatabaseUrl(),
      ADMIN_API_TOKEN: 'a'.repeat(24),
      SECRETS_KEY: Buffer.alloc(32, 7).toString('base64'),
      PORT: String(await freePort()),
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (b: Buffer) => (output += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (output += b.toString()));
  const code = await new Promise<number | null>((r) => child.once('exit', r));
  return { code, output };
}

describe('npm start with a secured frontend it cannot use', () => {
  it('stops on a CA that did not sign the server certificate, saying the certificate is not trusted', async () => {
    const { code, output } = await npmStart({ ...mtlsEnv(), TEMPORAL_TLS_CA: pki.otherCa });
    expect(code).toBe(1);
    expect(output).toContain(
      `cannot reach the secured Temporal frontend at ${front}: the server's certificate is not signed by TEMPORAL_TLS_CA (or, without it, a system CA)`,
    );
    expect(output).not.toMatch(/Temporal dev server/);
    expect(output).not.toMatch(/prisma client generated/); // it stops first (and leaves the other test files' client alone)
  }, 60_000);

  it('stops without a client certificate, saying the front requires one', async () => {
    const { TEMPORAL_TLS_CERT: _c, TEMPORAL_TLS_KEY: _k, ...noClientCert } = mtlsEnv();
    const { code, output } = await npmStart(noClientCert);
    expect(code).toBe(1);
    expect(output).toContain(
      `cannot reach the secured Temporal frontend at ${front}: the frontend requires a client certificate: set TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY`,
    );
    expect(output).not.toMatch(/Temporal dev server/);
    expect(output).not.toMatch(/prisma client generated/); // it stops first (and leaves the other test files' client alone)
  }, 60_000);
});
