// Graceful shutdown of the real process (ROLE=all): on SIGTERM the API stops accepting, a request
// already in flight gets its answer, the worker lets a running push activity finish (and record
// its outcome), and the process exits 0 soon after.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { eventually, newOwner, startHarness, type Harness } from '../helpers/harness';
import { githubRig, githubWorld, type GithubWorld } from '../helpers/scenario';
import { spawnService, type ServiceProcess } from './service-process';

let world: GithubWorld;
let h: Harness;
let svc: ServiceProcess | undefined;
let container: Server;
const arrivals: Array<{ at: number; req: IncomingMessage }> = [];

beforeAll(async () => {
  world = await githubWorld();
  // A container that takes pushes and never answers: the push activity waits for its 5 s timeout.
  container = createServer((req) => arrivals.push({ at: Date.now(), req }));
  await new Promise<void>((r) => container.listen(0, '127.0.0.1', r));
  h = await startHarness({ env: world.env, worker: false });
  svc = await spawnService({ role: 'all', config: h.core.config, env: world.env, label: 'shutdown' });
}, 180_000);

afterAll(async () => {
  svc?.kill('SIGKILL');
  container?.closeAllConnections();
  await new Promise((r) => container?.close(r));
  await h?.close();
  await world?.gh.close();
});

it('on SIGTERM finishes the request and the activity in flight, refuses new work, and exits 0', async () => {
  const rig = await githubRig(h, world, { repos: 1 });
  const { port } = container.address() as { port: number };
  const created = await h.call<{ dispatch_id: string }>('POST', `/api/rigs/${rig.rigId}/dispatches`, {
    container_url: `http://127.0.0.1:${port}/c/slow`,
  });
  expect(created.status).toBe(201);
  const dispatchId = created.body.dispatch_id;
  await eventually(async () => arrivals.length > 0, 30_000, 'the push to reach the container');
  const pushStarted = arrivals[0].at;

  // An API request that GitHub keeps waiting for 3 s (then fails), sent to the process itself.
  const inst = world.gh.addInstallation({ appId: world.standard.appId, account: { login: 'slow-co' }, repositories: 1 });
  world.gh.failNext(1, {
    status: 503,
    hangMs: 3000,
    match: (method, path) => method === 'GET' && path === `/app/installations/${inst.installationId}`,
  });
  const sentAt = Date.now();
  const inFlight = fetch(`${svc!.url}/api/integrations`, {
    method: 'POST',
    headers: { authorization: `Bearer ${h.core.config.adminApiToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ provider: 'github', owner_id: newOwner(), installation_id: inst.installationId, app_type: 'standard' }),
  }).then(async (r) => ({ status: r.status, body: (await r.json()) as { error?: { code: string } }, at: Date.now() }));
  await new Promise((r) => setTimeout(r, 800));

  const signalledAt = Date.now();
  svc!.kill('SIGTERM');
  await eventually(async () => svc!.output().includes('shutting down'), 5_000, 'the shutdown to start');

  // New work is refused: the listener is closed (or, on a kept-alive connection, 503).
  const late = await fetch(`${svc!.url}/healthz`).then(
    (r) => r.status,
    () => 'refused',
  );
  expect(['refused', 503]).toContain(late);

  // The request in flight gets its real answer once GitHub gives up.
  const answered = await inFlight;
  expect(answered.status).toBe(502);
  expect(answered.body.error?.code).toBe('provider_unavailable');
  expect(answered.at - sentAt).toBeGreaterThanOrEqual(2900);

  // The process waits for the push activity (5 s timeout) before it exits, and exits cleanly.
  const exit = await svc!.exited(signalledAt);
  expect(exit.code).toBe(0);
  expect(exit.ms).toBeLessThan(20_000);
  expect(signalledAt + exit.ms).toBeGreaterThanOrEqual(pushStarted + 4500);
  const failed = await h.core.db.tokenEvent.findMany({ where: { dispatchId, kind: 'push_failed' } });
  expect(failed.map((e) => e.detail)).toContain('container unreachable (timeout)');
  expect(svc!.output()).toMatch(/"msg":"stopped"/);
}, 120_000);
