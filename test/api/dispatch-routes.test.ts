// Dispatch routes with the worker running: starting a dispatch (container token shown once, kept
// only hashed and encrypted), its status and token ledger, stopping it, and their failures.
import { randomUUID } from 'node:crypto';
import { FakeContainerHost } from '../fakes/container';
import { eventually, startHarness, type Harness } from '../helpers/harness';
import { githubRig, githubWorld, pull, townTokenRig, type GithubWorld } from '../helpers/scenario';
import { expectError, expectInvalid, ISO, recordResponses } from '../helpers/api';
import { sha256Hex } from '../../lib/secrets';
import { containerTokenContext } from '../../lib/secret-contexts';

let h: Harness;
let world: GithubWorld;
let containers: FakeContainerHost;
let responses: string[];
const containerTokens: string[] = [];

beforeAll(async () => {
  world = await githubWorld();
  containers = await FakeContainerHost.start();
  h = await startHarness({ env: { ...world.env, REFRESH_JITTER_MAX_SECONDS: '0' } });
  responses = recordResponses(h);
});
afterAll(async () => {
  await h?.close();
  await containers?.close();
  await world?.gh.close();
});

interface Created {
  dispatch_id: string;
  workflow_id: string;
  container_token: string;
}
interface Status {
  id: string;
  status: string;
  credential_source: string;
  generation: number;
  token_expires_at: string | null;
  refreshed_at: string | null;
  last_error: { code: string; message: string; at: string } | null;
  ended_at: string | null;
}
interface Events {
  events: Array<{ kind: string; source: string; generation: number; fingerprint: string | null; expires_at: string | null; at: string }>;
}

/** A manual rig whose town has a static token for its host. */
const staticRig = async () => (await townTokenRig(h, { name: 'dispatches', token: `static-${randomUUID()}` })).rigId;

async function start(rigId: string, name: string) {
  const url = containers.add(name);
  const res = await h.call<Created>('POST', `/api/rigs/${rigId}/dispatches`, { container_url: url });
  expect(res.status).toBe(201);
  containers.setBearer(name, res.body.container_token);
  containerTokens.push(res.body.container_token);
  return res.body;
}

const status = (id: string) => h.call<Status>('GET', `/api/dispatches/${id}`);
const until = (id: string, wanted: string) =>
  eventually(
    async () => {
      const s = await status(id);
      return s.body.status === wanted ? s.body : null;
    },
    20_000,
    `dispatch ${id} ${wanted}`,
  );

describe('POST /api/rigs/:id/dispatches', () => {
  it('answers 201 with the container token once; the service keeps only its SHA-256 and an encrypted copy', async () => {
    const rigId = await staticRig();
    const d = await start(rigId, 'shape');
    expect(Object.keys(d).sort()).toEqual(['container_token', 'dispatch_id', 'workflow_id']);
    expect(d.workflow_id).toBe(`git-token-${d.dispatch_id}`);
    expect(d.container_token.length).toBeGreaterThanOrEqual(40);

    const row = await h.core.db.agentDispatch.findUniqueOrThrow({ where: { id: d.dispatch_id } });
    expect(row.containerTokenHash).toBe(sha256Hex(d.container_token));
    expect(row.containerTokenEnc).not.toContain(d.container_token);
    expect(h.core.secrets.decrypt(row.containerTokenEnc, containerTokenContext(d.dispatch_id))).toBe(d.container_token);
    expect(JSON.stringify(row)).not.toContain(d.container_token);
    expect(row.containerUrl).toBe(containers.baseUrl + '/c/shape');
  });

  it.each([
    [{}, /required/],
    [{ container_url: '' }, /URL/],
    [{ container_url: 'not a url' }, /URL/],
    [{ container_url: 'ftp://agent:21/x' }, /http/],
    [{ container_url: 'http://user:pw@agent:8787' }, /credentials/],
    [{ container_url: 'http://agent:8787/?token=x' }, /query/],
    [{ container_url: 42 }, /string/],
  ])('refuses %j with 400 naming container_url and starts nothing', async (body, message) => {
    const rigId = await staticRig();
    expectInvalid(await h.call('POST', `/api/rigs/${rigId}/dispatches`, body), 'container_url', message);
    expect(await h.core.db.agentDispatch.count({ where: { rigId } })).toBe(0);
  });

  it('answers 404 for an unknown rig and 400 for a malformed rig id', async () => {
    expectError(
      await h.call('POST', `/api/rigs/${randomUUID()}/dispatches`, { container_url: 'http://agent:8787' }),
      404,
      'not_found',
      'rig_id',
    );
    expectInvalid(await h.call('POST', '/api/rigs/abc/dispatches', { container_url: 'http://agent:8787' }), 'rig_id');
  });

  it('answers 404 when the rig is deleted while its dispatch is created, and writes nothing', async () => {
    const rigId = await staticRig();
    // The rig goes just before the dispatch row is written, as a DELETE landing after the rig was read.
    const drop = `rc_test_drop_rig_${rigId.replace(/-/g, '')}`;
    await h.core.db.$executeRawUnsafe(
      `CREATE FUNCTION ${drop}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN DELETE FROM gastown_rigs WHERE id = NEW.rig_id; RETURN NEW; END $$`,
    );
    await h.core.db.$executeRawUnsafe(
      `CREATE TRIGGER ${drop} BEFORE INSERT ON agent_dispatches FOR EACH ROW WHEN (NEW.rig_id = '${rigId}') EXECUTE FUNCTION ${drop}()`,
    );
    try {
      const res = await h.call('POST', `/api/rigs/${rigId}/dispatches`, { container_url: containers.add('deleted-rig') });
      expectError(res, 404, 'not_found', 'rig_id');
    } finally {
      await h.core.db.$executeRawUnsafe(`DROP TRIGGER ${drop} ON agent_dispatches`);
      await h.core.db.$executeRawUnsafe(`DROP FUNCTION ${drop}()`);
    }
    expect(await h.core.db.agentDispatch.count({ where: { rigId } })).toBe(0);
  });

  it('starts even when the installation is suspended, and the status says why it cannot mint', async () => {
    const rig = await githubRig(h, world, { repos: 1 });
    world.gh.suspend(rig.installationId);
    const d = await start(rig.rigId, 'suspended');
    const s = await until(d.dispatch_id, 'credential_error');
    expect(s.last_error).toEqual({ code: 'installation_suspended', message: expect.any(String), at: expect.stringMatching(ISO) });
    expect(containers.pushes('suspended')).toHaveLength(0);
  });
});

describe('GET /api/dispatches/:id, /events and POST /stop', () => {
  it('shows the status and the token ledger, stops with 202 (idempotently) and ends as stopped', async () => {
    const rigId = await staticRig();
    const d = await start(rigId, 'lifecycle');
    await containers.waitForPush('lifecycle', (p) => p.generation === 1, 20_000);
    const active = await until(d.dispatch_id, 'active');
    expect(active).toEqual({
      id: d.dispatch_id,
      rig_id: rigId,
      workflow_id: d.workflow_id,
      container_url: `${containers.baseUrl}/c/lifecycle`,
      status: 'active',
      credential_source: 'town_git_auth',
      credential_scope: 'static',
      credential_scope_reason: null,
      generation: 1,
      token_expires_at: null,
      refreshed_at: expect.stringMatching(ISO),
      last_error: null,
      started_at: expect.stringMatching(ISO),
      ended_at: null,
    });

    const events = await h.call<Events>('GET', `/api/dispatches/${d.dispatch_id}/events`);
    expect(events.status).toBe(200);
    expect(events.body.events.map((e) => e.kind)).toEqual(expect.arrayContaining(['minted', 'pushed']));
    for (const e of events.body.events) {
      expect(e).toMatchObject({ source: 'town_git_auth', generation: 1, expires_at: null, at: expect.stringMatching(ISO) });
      expect(e.fingerprint).toMatch(/^sha256:[0-9a-f]{16}$/);
    }

    const list = await h.call<{ dispatches: Status[] }>('GET', `/api/rigs/${rigId}/dispatches`);
    expect(list.body.dispatches.map((x) => x.id)).toEqual([d.dispatch_id]);

    const stop = await h.call('POST', `/api/dispatches/${d.dispatch_id}/stop`);
    expect(stop.status).toBe(202);
    expect(stop.body).toEqual({ status: 'stopping' });
    expect((await h.call('POST', `/api/dispatches/${d.dispatch_id}/stop`)).status).toBe(202);
    const stopped = await until(d.dispatch_id, 'stopped');
    expect(stopped.ended_at).toMatch(ISO);
    expect((await h.call('POST', `/api/dispatches/${d.dispatch_id}/stop`)).status).toBe(202);
    expect((await status(d.dispatch_id)).body.status).toBe('stopped');
  });

  it('stops a dispatch whose workflow has not run yet', async () => {
    await h.stopWorker();
    try {
      const rigId = await staticRig();
      const d = await start(rigId, 'no-worker');
      expect((await status(d.dispatch_id)).body).toMatchObject({ status: 'starting', generation: 0, last_error: null });
      expect((await h.call<Events>('GET', `/api/dispatches/${d.dispatch_id}/events`)).body).toEqual({ events: [], next_cursor: null });
      expect((await h.call('POST', `/api/dispatches/${d.dispatch_id}/stop`)).status).toBe(202);
      await h.startWorker();
      await until(d.dispatch_id, 'stopped');
      expect(containers.pushes('no-worker')).toHaveLength(0);
    } finally {
      if (!h.workers) await h.startWorker();
    }
  });

  it('ends a dispatch itself when an operator terminated its workflow: pulls answer 410 and its token is forgotten', async () => {
    const rigId = await staticRig();
    const d = await start(rigId, 'terminated');
    await containers.waitForPush('terminated', (p) => p.generation === 1, 20_000);
    await until(d.dispatch_id, 'active');
    // Ids are read in any case (the lane and the route alike), as lower case.
    expect((await pull(h, rigId.toUpperCase(), d.container_token)).status).toBe(200);
    expect((await pull(h, rigId, d.container_token)).status).toBe(200); // cached now: the lane answers
    expect((await pull(h, rigId.toUpperCase(), d.container_token)).status).toBe(200);
    await h.core.temporal.workflow.getHandle(d.workflow_id).terminate('operator test');

    expect((await h.call('POST', `/api/dispatches/${d.dispatch_id.toUpperCase()}/stop`)).status).toBe(202);
    const ended = (await status(d.dispatch_id.toUpperCase())).body;
    expect([ended.id, ended.status, ended.ended_at]).toEqual([d.dispatch_id, 'stopped', expect.stringMatching(ISO)]);
    expect((await pull(h, rigId, d.container_token)).status).toBe(410);
    const lease = await h.core.db.tokenLease.findUniqueOrThrow({ where: { dispatchId: d.dispatch_id } });
    expect([lease.tokenEnc, lease.previousTokenEnc]).toEqual([null, null]);
  });

  it('revokes the GitHub token itself when it ends a dispatch whose workflow an operator terminated', async () => {
    const rig = await githubRig(h, world, { repos: 1 });
    const d = await start(rig.rigId, 'terminated-github');
    const pushed = await containers.waitForPush('terminated-github', (p) => p.generation === 1, 20_000);
    await until(d.dispatch_id, 'active');
    expect(world.gh.isTokenLive(pushed.token)).toBe(true);
    await h.core.temporal.workflow.getHandle(d.workflow_id).terminate('operator test');

    expect((await h.call('POST', `/api/dispatches/${d.dispatch_id.toUpperCase()}/stop`)).status).toBe(202);
    expect((await status(d.dispatch_id)).body.status).toBe('stopped');
    expect(world.gh.isTokenRevoked(pushed.token)).toBe(true);
    const events = await h.call<{ events: Array<{ kind: string; generation: number }> }>('GET', `/api/dispatches/${d.dispatch_id}/events`);
    expect(events.body.events.filter((e) => e.kind === 'revoked')).toEqual([expect.objectContaining({ generation: 1 })]);
  });

  it('a pull that needs a refresh from a workflow an operator terminated ends the dispatch: 410, token revoked', async () => {
    world.gh.tokenLifetimeSeconds = 8; // fresh for a pull while more than half its life is left
    try {
      const rig = await githubRig(h, world, { repos: 1 });
      const d = await start(rig.rigId, 'terminated-pull');
      await containers.waitForPush('terminated-pull', (p) => p.generation >= 1, 20_000);
      await h.core.temporal.workflow.getHandle(d.workflow_id).terminate('operator test');
      const held = (await h.core.leases.read(d.dispatch_id))!;
      // Until the lease is stale the pull is served; then it asks the workflow, which is gone.
      await new Promise((r) => setTimeout(r, Math.max(0, held.expiresAt!.getTime() - 3500 - Date.now())));
      expectError(await pull(h, rig.rigId, d.container_token), 410, 'dispatch_ended');
      expect((await status(d.dispatch_id)).body.status).toBe('stopped');
      expect(world.gh.isTokenRevoked(held.token!)).toBe(true);
    } finally {
      world.gh.tokenLifetimeSeconds = 3600;
    }
  });

  it('answers 404 for unknown dispatches and 400 for malformed ids', async () => {
    const id = randomUUID();
    expectError(await h.call('GET', `/api/dispatches/${id}`), 404, 'not_found', 'dispatch_id');
    expectError(await h.call('GET', `/api/dispatches/${id}/events`), 404, 'not_found', 'dispatch_id');
    expectError(await h.call('POST', `/api/dispatches/${id}/stop`), 404, 'not_found', 'dispatch_id');
    expectInvalid(await h.call('GET', '/api/dispatches/1'), 'dispatch_id');
    expectInvalid(await h.call('POST', '/api/dispatches/1/stop'), 'dispatch_id');
    expectError(await h.call('GET', `/api/rigs/${randomUUID()}/dispatches`), 404, 'not_found', 'rig_id');
  });
});

describe('secrets', () => {
  it('shows each container token only in the response that created it (runs last)', () => {
    expect(containerTokens.length).toBeGreaterThan(3);
    for (const token of containerTokens) {
      const showing = responses.filter((r) => r.includes(token));
      expect(showing).toHaveLength(1);
      expect(showing[0]).toMatch(/^POST \/api\/rigs\/[^/]+\/dispatches 201 /);
    }
  });
});
