// Item 3 of the security review: a dispatch's container_url could name any host, so the workflow
// would POST tokens to the cloud metadata address, a multicast group, or wherever a name pointed
// at push time. Every probe here stays on this machine even if a check were missing: refusals are
// probed on a rig without credentials (nothing would ever be pushed) and anything accepted is
// stopped at once; push-time checks use loopback addresses only, and names resolve through the
// test's own resolver, never DNS.
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pushToContainer } from '../../activities/container-push';
import { startApi, type RunningApi } from '../../api/server';
import { containerUrlProblem, parseContainerUrlAllow, type ContainerUrlPolicy, type ResolveHost } from '../../lib/container-url-policy';
import { expectInvalid } from '../helpers/api';
import { eventually, newOwner, startHarness, type Harness } from '../helpers/harness';
import { townTokenRig } from '../helpers/scenario';

let h: Harness;
const apis: RunningApi[] = [];

beforeAll(async () => {
  // The deployment allows only 127.0.0.1 (the fake containers of this file live there).
  h = await startHarness({ env: { CONTAINER_URL_ALLOW: '127.0.0.1' } });
});
afterAll(async () => {
  for (const api of apis) await api.close();
  await h?.close();
});

/** A rig whose town has no token: a dispatch on it can never get a credential, so nothing is pushed. */
async function rigWithoutCredentials() {
  const town = await h.call<{ id: string }>('POST', '/api/towns', { name: 'urls', owner_id: newOwner() });
  const rig = await h.call<{ id: string }>('POST', `/api/towns/${town.body.id}/rigs`, {
    name: 'r',
    git_url: 'https://git.example.com/a/b.git',
  });
  return rig.body.id;
}

/** Creates a dispatch through `url` (an API); anything accepted is stopped at once. */
async function dispatch(apiUrl: string, rigId: string, containerUrl: string) {
  const res = await fetch(`${apiUrl}/api/rigs/${rigId}/dispatches`, {
    method: 'POST',
    headers: { authorization: `Bearer ${h.core.config.adminApiToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ container_url: containerUrl }),
  });
  const body = (await res.json()) as {
    dispatch_id?: string;
    workflow_id?: string;
    error?: { field?: string; message?: string; code?: string };
  };
  if (body.workflow_id)
    await h.core.temporal.workflow
      .getHandle(body.workflow_id)
      .terminate('probe accepted: stopped at once')
      .catch(() => undefined);
  return { status: res.status, body };
}

/** An API over the harness's core with its own container URL policy (allow-list, production, resolver). */
async function apiWith(policy: Partial<ContainerUrlPolicy>): Promise<string> {
  const api = await startApi(h.core, {
    logger: h.core.logger,
    containerUrlPolicy: { ...h.core.containerUrlPolicy, allow: undefined, ...policy },
  });
  apis.push(api);
  return api.url;
}

const resolver =
  (names: Record<string, string[]>): ResolveHost =>
  async (host) => {
    const found = names[host];
    if (!found) throw Object.assign(new Error('ENOTFOUND'), { code: 'ENOTFOUND' });
    return found.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
  };

const ALWAYS_REFUSED = [
  'http://169.254.169.254/latest/meta-data',
  'http://169.254.0.1:8787',
  'http://2852039166:8787', // 169.254.169.254 written as one number
  'http://0xa9.0xfe.0xa9.0xfe:8787',
  'http://[fe80::1]:8787',
  'http://[febf:ffff::1]:8787',
  'http://0.0.0.0:8787',
  'http://[::]:8787',
  'http://224.0.0.1:8787',
  'http://239.255.255.250:1900',
  'http://[ff02::1]:8787',
  'http://255.255.255.255:8787',
  'http://[::ffff:169.254.169.254]:8787',
  'http://[::ffff:0.0.0.0]:8787',
  'http://[::ffff:224.0.0.1]:8787',
  'http://[64:ff9b::a9fe:a9fe]:8787',
];

describe('POST /api/rigs/:id/dispatches container_url', () => {
  it.each(ALWAYS_REFUSED)('always refuses %s, and starts nothing', async (url) => {
    const rigId = await rigWithoutCredentials();
    const res = await dispatch(h.url, rigId, url);
    expect({ status: res.status, field: res.body.error?.field }).toEqual({ status: 400, field: 'container_url' });
    expect(res.body.error?.message).toMatch(/link-local|unspecified|multicast|broadcast/);
    expect(await h.core.db.agentDispatch.count({ where: { rigId } })).toBe(0);
  });

  it.each(['http://127.0.0.1:8787#', 'http://127.0.0.1:8787?', 'http://127.0.0.1:8787/?x=1', 'http://127.0.0.1:8787/#top'])(
    'refuses a query or fragment, even an empty one: %s',
    async (url) => {
      const rigId = await rigWithoutCredentials();
      const res = await dispatch(h.url, rigId, url);
      expect({ status: res.status, field: res.body.error?.field, message: res.body.error?.message }).toEqual({
        status: 400,
        field: 'container_url',
        message: expect.stringContaining('must not contain a query or fragment'),
      });
      expect(await h.core.db.agentDispatch.count({ where: { rigId } })).toBe(0);
    },
  );

  it('resolves a name first and refuses it when any of its addresses is refused', async () => {
    const api = await apiWith({
      resolve: resolver({ 'metadata.test': ['169.254.169.254'], 'mixed.test': ['127.0.0.1', '169.254.1.1'], 'v6.test': ['fe80::1'] }),
    });
    const rigId = await rigWithoutCredentials();
    for (const host of ['metadata.test', 'mixed.test', 'v6.test', 'nowhere.test']) {
      const res = await dispatch(api, rigId, `http://${host}:8787`);
      expect({ host, status: res.status, field: res.body.error?.field }).toEqual({ host, status: 400, field: 'container_url' });
    }
    expect(await h.core.db.agentDispatch.count({ where: { rigId } })).toBe(0);
  });

  it('allows only what CONTAINER_URL_ALLOW names when it is set: hosts, *.suffix and CIDRs', async () => {
    const api = await apiWith({
      allow: parseContainerUrlAllow('127.0.0.2, *.agents.test, 10.0.0.0/8').allow,
      resolve: resolver({
        'box.agents.test': ['127.0.0.9'],
        'lan.test': ['10.1.2.3'],
        'half.test': ['10.1.2.3', '127.0.0.1'],
        'agents.test': ['127.0.0.9'],
        'other.test': ['127.0.0.1'],
      }),
    });
    const rigId = await rigWithoutCredentials();
    for (const url of ['http://127.0.0.2:9', 'http://box.agents.test:9', 'http://lan.test:9'])
      expect((await dispatch(api, rigId, url)).status).toBe(201);
    for (const url of ['http://127.0.0.1:9', 'http://other.test:9', 'http://half.test:9', 'http://agents.test:9']) {
      const res = await dispatch(api, rigId, url);
      expectInvalid({ status: res.status, body: res.body, headers: new Headers() }, 'container_url', /not allowed by CONTAINER_URL_ALLOW/);
    }
  });

  it('in production allows plain http only to hosts CONTAINER_URL_ALLOW names', async () => {
    const open = await apiWith({ production: true });
    const rigId = await rigWithoutCredentials();
    const plain = await dispatch(open, rigId, 'http://127.0.0.1:9');
    expectInvalid({ status: plain.status, body: plain.body, headers: new Headers() }, 'container_url', /plain http/);
    expect((await dispatch(open, rigId, 'https://127.0.0.1:9')).status).toBe(201);
    const listed = await apiWith({ production: true, allow: parseContainerUrlAllow('127.0.0.1').allow });
    expect((await dispatch(listed, rigId, 'http://127.0.0.1:9')).status).toBe(201);
  });
});

describe('at push time', () => {
  const servers: Server[] = [];
  /** A fake container on a loopback address, recording whether anything reached it. */
  async function containerOn(address: string) {
    const seen: string[] = [];
    const server = createServer((req, res) => {
      seen.push(`${req.method} ${req.url}`);
      res.writeHead(200).end('{}');
    });
    await new Promise<void>((r) => server.listen(0, address, r));
    servers.push(server);
    return { port: (server.address() as AddressInfo).port, seen };
  }
  afterAll(async () => {
    for (const s of servers) await new Promise<void>((r) => s.close(() => r()));
  });

  const body = {
    rig_id: 'r',
    dispatch_id: 'd',
    token: 'ghs_never_to_the_wrong_host',
    expires_at: null,
    username: 'x-access-token',
    generation: 1,
  };
  const push = (containerUrl: string, policy: ContainerUrlPolicy) =>
    pushToContainer({ containerUrl, containerToken: 'rcc_x', body, timeoutMs: 3000, policy });

  it('connects to the address it checked: a name that rebinds after the dispatch was accepted gets nothing', async () => {
    const allowed = await containerOn('127.0.0.2');
    const elsewhere = await containerOn('127.0.0.3');
    let answers = 0;
    // Checked at creation: 127.0.0.2. By the push, the name points at 127.0.0.3.
    const rebinding: ResolveHost = async () => [{ address: answers++ === 0 ? '127.0.0.2' : '127.0.0.3', family: 4 }];
    const policy: ContainerUrlPolicy = { allow: parseContainerUrlAllow('127.0.0.2').allow, production: false, resolve: rebinding };
    expect(await containerUrlProblem(`http://rebind.test:${elsewhere.port}`, policy)).toBeNull();
    const outcome = await push(`http://rebind.test:${elsewhere.port}`, policy);
    expect(outcome).toEqual({ outcome: 'refused', detail: expect.stringMatching(/not allowed by CONTAINER_URL_ALLOW/) });
    expect(elsewhere.seen).toEqual([]);

    // A name that only this resolver knows reaches the allowed container: the socket used the checked address.
    const pinned = await push(`http://pinned.test:${allowed.port}`, {
      ...policy,
      resolve: async () => [{ address: '127.0.0.2', family: 4 }],
    });
    expect(pinned.outcome).toBe('acknowledged');
    expect(allowed.seen).toEqual(['POST /git-token']);
  });

  it('refuses a name with any refused address, and an address literal outside the allow-list, without connecting', async () => {
    const elsewhere = await containerOn('127.0.0.3');
    const policy: ContainerUrlPolicy = {
      allow: parseContainerUrlAllow('127.0.0.2').allow,
      production: false,
      resolve: async () => [
        { address: '127.0.0.2', family: 4 },
        { address: '127.0.0.3', family: 4 },
      ],
    };
    expect((await push(`http://mixed.test:${elsewhere.port}`, policy)).outcome).toBe('refused');
    expect((await push(`http://127.0.0.3:${elsewhere.port}`, policy)).outcome).toBe('refused');
    expect(elsewhere.seen).toEqual([]);
  });

  it('the worker checks every push: a dispatch whose address left the allow-list gets push_failed, and the container nothing', async () => {
    const elsewhere = await containerOn('127.0.0.3');
    const { rigId, townId } = await townTokenRig(h, { name: 'push-time', token: `static-${randomUUID()}` });
    const accepted = await containerOn('127.0.0.1');
    // Accepted at creation (127.0.0.1 is allowed), and its first token delivered there ...
    const d = await h.call<{ dispatch_id: string; workflow_id: string }>('POST', `/api/rigs/${rigId}/dispatches`, {
      container_url: `http://127.0.0.1:${accepted.port}`,
    });
    expect(d.status).toBe(201);
    await eventually(async () => accepted.seen.length > 0, 20_000, 'the first push');
    // ... then the row says 127.0.0.3 (as a name's new address would): the worker must not follow
    // when it has a new token to push (the town's token changes).
    await h.core.db.agentDispatch.update({
      where: { id: d.body.dispatch_id },
      data: { containerUrl: `http://127.0.0.3:${elsewhere.port}` },
    });
    const changed = await h.call('PUT', `/api/towns/${townId}/git-auth`, {
      tokens: [{ host: 'git.example.com', token: `static-${randomUUID()}` }],
    });
    expect(changed.status).toBe(204);
    const failed = await eventually(
      async () => (await h.core.db.tokenEvent.findFirst({ where: { dispatchId: d.body.dispatch_id, kind: 'push_failed' } })) ?? undefined,
      20_000,
      'a push_failed event',
    );
    expect(failed.detail).toMatch(/container address refused: host 127.0.0.3 is not allowed by CONTAINER_URL_ALLOW/);
    expect(elsewhere.seen).toEqual([]);
    await h.core.temporal.workflow
      .getHandle(d.body.workflow_id)
      .terminate('test over')
      .catch(() => undefined);
  });
});
