// The pull route's lane in front of the framework (api/routes/pull-lane.ts), over real HTTP: it
// answers bodiless pulls of a fresh lease exactly as the route does, and leaves everything else to
// the route, which answers it as before.
import { FakeContainerHost } from '../fakes/container';
import { startHarness, type Harness } from '../helpers/harness';
import { dispatchTo, townTokenRig, type Dispatched } from '../helpers/scenario';
import { PULL_ROUTE } from '../../api/routes/containers';
import { buildApp } from '../../api/app';
import { createServices } from '../../api/services';

let containers: FakeContainerHost;
let h: Harness;
let rigId: string;
let otherRigId: string;
let d: Dispatched;

beforeAll(async () => {
  containers = await FakeContainerHost.start();
  h = await startHarness({ env: { PULL_RATE_LIMIT_PER_MINUTE: '100000' } });
  rigId = (await townTokenRig(h, { name: 'lane', token: 'lane-static' })).rigId;
  otherRigId = (await townTokenRig(h, { name: 'lane-other', token: 'lane-other-static' })).rigId;
  d = await dispatchTo(h, containers, rigId, 'lane');
  await containers.waitForPush(d.container, (p) => p.generation === 1);
});
afterAll(async () => {
  await h?.close();
  await containers?.close();
});

/** Pulls answered in the lane so far. */
async function laneHits(): Promise<number> {
  return (await h.core.metrics.laneHits.get()).values[0]?.value ?? 0;
}

interface Answer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** A request to the service (or to `base`), its answer with the headers that depend on the connection left out. */
async function send(
  path: string,
  init: { method?: string; headers?: Record<string, string>; body?: string } = {},
  base = h.url,
): Promise<Answer> {
  const res = await fetch(`${base}${path}`, { method: init.method ?? 'POST', headers: init.headers, body: init.body });
  const headers: Record<string, string> = {};
  res.headers.forEach((value, name) => {
    if (!['date', 'connection', 'keep-alive'].includes(name)) headers[name] = value;
  });
  return { status: res.status, headers, body: await res.text() };
}

const route = (rig: string) => `/api/internal/rigs/${rig}/git-token`;
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
/** The same pull with a JSON body, which the lane never answers: the framework's own answer. */
const throughFramework = (headers: Record<string, string>) => ({ headers: { ...headers, 'content-type': 'application/json' }, body: '{}' });

it('answers a bodiless pull of a fresh lease in the lane, exactly as the route answers it', async () => {
  // The first pull reads Postgres (through the route) and leaves the lease in this instance's cache.
  const first = await send(route(rigId), { headers: bearer(d.containerToken) });
  expect(first.status).toBe(200);
  const series = h.core.metrics.httpRequests.series({ route: PULL_ROUTE, method: 'POST', status: '200' });
  const observed = series.count;
  const before = await laneHits();
  const lane = await send(route(rigId), { headers: bearer(d.containerToken) });
  expect(await laneHits()).toBe(before + 1);
  const framework = await send(route(rigId), throughFramework(bearer(d.containerToken)));
  expect(await laneHits()).toBe(before + 1);

  expect(lane.status).toBe(200);
  expect(JSON.parse(lane.body)).toEqual({
    token: 'lane-static',
    expires_at: null,
    username: containers.latest(d.container)!.username,
    generation: 1,
  });
  expect(lane.headers).toEqual(framework.headers);
  expect(lane.headers).toMatchObject({ 'cache-control': 'no-store', 'content-type': 'application/json; charset=utf-8' });
  expect(lane.body).toBe(framework.body);
  // Both count in the route's request histogram, in the same series.
  expect(series.count).toBe(observed + 2);
  // And in the pulls served from memory.
  const hits = (await h.core.metrics.pulls.get()).values.find((v) => v.labels.result === 'hit')?.value ?? 0;
  expect(hits).toBeGreaterThanOrEqual(2);
});

it('leaves every pull it cannot settle from memory to the route, which answers as before', async () => {
  const cases: Array<{ name: string; path: string; headers?: Record<string, string>; method?: string; status: number; code?: string }> = [
    { name: 'unknown token', path: route(rigId), headers: bearer('rcc_not-a-real-token'), status: 401, code: 'unauthorized' },
    { name: 'no bearer', path: route(rigId), status: 401, code: 'unauthorized' },
    { name: "another rig's path", path: route(otherRigId), headers: bearer(d.containerToken), status: 403, code: 'forbidden' },
    { name: 'rig id not a UUID', path: route('not-a-uuid'), headers: bearer(d.containerToken), status: 400, code: 'invalid_request' },
    {
      name: 'malformed held generation',
      path: route(rigId),
      headers: { ...bearer(d.containerToken), 'repo-connect-generation': 'two' },
      status: 400,
      code: 'invalid_request',
    },
    // A newer generation than the cache holds: the route reads Postgres (which has generation 1).
    {
      name: 'newer held generation',
      path: route(rigId),
      headers: { ...bearer(d.containerToken), 'repo-connect-generation': '7' },
      status: 200,
    },
    { name: 'a query string', path: `${route(rigId)}?x=1`, headers: bearer(d.containerToken), status: 200 },
    { name: 'GET', path: route(rigId), headers: bearer(d.containerToken), method: 'GET', status: 404 },
  ];
  for (const c of cases) {
    const before = await laneHits();
    const res = await send(c.path, { method: c.method, headers: c.headers });
    expect({ name: c.name, status: res.status }).toEqual({ name: c.name, status: c.status });
    if (c.code) expect(JSON.parse(res.body).error.code).toBe(c.code);
    if (c.status === 401) expect(res.headers['www-authenticate']).toBe('Bearer');
    if (c.status === 200) expect(JSON.parse(res.body)).toMatchObject({ token: 'lane-static', generation: 1 });
    expect({ name: c.name, lane: (await laneHits()) - before }).toEqual({ name: c.name, lane: 0 });
    // The same request with a body, always the framework's: the same status.
    if (c.method === undefined) expect((await send(c.path, throughFramework(c.headers ?? {}))).status).toBe(c.status);
  }
});

it('leaves ended dispatches to the route (410 dispatch_ended)', async () => {
  const ended = await dispatchTo(h, containers, otherRigId, 'lane-ended');
  await containers.waitForPush(ended.container, (p) => p.generation === 1);
  expect((await send(route(otherRigId), { headers: bearer(ended.containerToken) })).status).toBe(200);
  await h.call('POST', `/api/dispatches/${ended.dispatchId}/stop`);
  const before = await laneHits();
  let res: Answer | undefined;
  for (let i = 0; i < 50 && res?.status !== 410; i++) {
    res = await send(route(otherRigId), { headers: bearer(ended.containerToken) });
    if (res.status !== 410) await new Promise((r) => setTimeout(r, 100));
  }
  expect(res?.status).toBe(410);
  expect(JSON.parse(res!.body).error.code).toBe('dispatch_ended');
  const served = (await laneHits()) - before;
  // Until the stop's lease write was heard, pulls of the live lease could still be answered in the lane.
  expect((await send(route(otherRigId), { headers: bearer(ended.containerToken) })).status).toBe(410);
  expect((await laneHits()) - before).toBe(served);
});

it('answers nothing once the app starts closing: the framework answers 503 while it closes', async () => {
  // An app of its own over the same core, with a hook of the test's that pulls while the app closes
  // (after the app's own preClose hook, which switches the lane off, and before the listener closes).
  const services = createServices(h.core);
  await services.start();
  const app = await buildApp({ services, logger: h.core.logger });
  let duringClose: { answer: Answer; lane: number } | undefined;
  let base = '';
  app.addHook('preClose', async () => {
    const before = await laneHits();
    const answer = await send(route(rigId), { headers: bearer(d.containerToken) }, base);
    duringClose = { answer, lane: (await laneHits()) - before };
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
  try {
    // Open: the second pull of the lease is answered in the lane.
    expect((await send(route(rigId), { headers: bearer(d.containerToken) }, base)).status).toBe(200);
    const before = await laneHits();
    expect((await send(route(rigId), { headers: bearer(d.containerToken) }, base)).status).toBe(200);
    expect(await laneHits()).toBe(before + 1);
  } finally {
    await app.close();
    await services.close();
  }
  expect(duringClose?.answer.status).toBe(503);
  expect(duringClose?.lane).toBe(0);
});
