// Town static tokens: pushed once, pushed again when the town's git-auth changes (a signal, no
// polling), pulled, and forgotten at stop. Real API, worker, Temporal and Postgres.
import { FakeContainerHost } from '../fakes/container';
import { eventually, newOwner, startHarness, type Harness } from '../helpers/harness';
import { townTokenRig } from '../helpers/scenario';

let h: Harness;
let containers: FakeContainerHost;

beforeAll(async () => {
  containers = await FakeContainerHost.start();
  h = await startHarness({ env: { TOKEN_REFRESH_MARGIN_SECONDS: '5' } });
});
afterAll(async () => {
  await h?.close();
  await containers?.close();
});

async function dispatch(rigId: string, name: string) {
  const url = containers.add(name);
  const res = await h.call<{ dispatch_id: string; workflow_id: string; container_token: string }>('POST', `/api/rigs/${rigId}/dispatches`, {
    container_url: url,
  });
  expect(res.status).toBe(201);
  containers.setBearer(name, res.body.container_token);
  return res.body;
}

it('pushes the town token once, re-pushes when git-auth changes, serves pulls, and forgets it at stop', async () => {
  const { townId, rigId } = await townTokenRig(h, { name: 'static', token: 'static-token-one' });
  const d = await dispatch(rigId, 'town-a');

  const first = await containers.waitForPush('town-a', (p) => p.generation === 1);
  expect(first).toMatchObject({
    token: 'static-token-one',
    expires_at: null,
    username: 'x-access-token',
    rig_id: rigId,
    dispatch_id: d.dispatch_id,
  });

  const status = await eventually(async () => {
    const s = await h.call<{ status: string; credential_source: string; generation: number }>('GET', `/api/dispatches/${d.dispatch_id}`);
    return s.body.status === 'active' ? s.body : null;
  });
  expect(status).toMatchObject({ credential_source: 'town_git_auth', credential_scope: 'static', generation: 1, token_expires_at: null });

  const pulled = await fetch(`${h.url}/api/internal/rigs/${rigId}/git-token`, {
    method: 'POST',
    headers: { authorization: `Bearer ${d.container_token}` },
  });
  expect(pulled.status).toBe(200);
  expect(await pulled.json()).toEqual({ token: 'static-token-one', expires_at: null, username: 'x-access-token', generation: 1 });

  // A static token is never re-minted on a timer: nothing new arrives without a change.
  await new Promise((r) => setTimeout(r, 1500));
  expect(containers.pushes('town-a')).toHaveLength(1);

  expect(
    (
      await h.call('PUT', `/api/towns/${townId}/git-auth`, {
        tokens: [{ host: 'git.example.com', token: 'static-token-two', username: 'bot' }],
      })
    ).status,
  ).toBe(204);
  const second = await containers.waitForPush('town-a', (p) => p.generation === 2);
  expect(second).toMatchObject({ token: 'static-token-two', username: 'bot' });

  expect((await h.call('POST', `/api/dispatches/${d.dispatch_id}/stop`)).status).toBe(202);
  await eventually(async () => (await h.call<{ status: string }>('GET', `/api/dispatches/${d.dispatch_id}`)).body.status === 'stopped');
  const after = await fetch(`${h.url}/api/internal/rigs/${rigId}/git-token`, {
    method: 'POST',
    headers: { authorization: `Bearer ${d.container_token}` },
  });
  expect(after.status).toBe(410);

  const lease = await h.core.db.tokenLease.findUnique({ where: { dispatchId: d.dispatch_id } });
  expect(lease?.tokenEnc).toBeNull();

  const events = await h.call<{ events: Array<{ kind: string; generation: number; fingerprint: string | null }> }>(
    'GET',
    `/api/dispatches/${d.dispatch_id}/events`,
  );
  const kinds = events.body.events.map((e) => `${e.kind}:${e.generation}`);
  expect(kinds).toEqual(expect.arrayContaining(['minted:1', 'pushed:1', 'pulled:1', 'minted:2', 'pushed:2']));
  expect(JSON.stringify(events.body)).not.toContain('static-token');

  // Operators find the run by its search attributes.
  const found = await eventually(async () => {
    const runs: string[] = [];
    for await (const wf of h.core.temporal.workflow.list({
      query: `RigId = "${rigId}" AND DispatchStatus = "stopped" AND CredentialSource = "town_git_auth"`,
    }))
      runs.push(wf.workflowId);
    return runs.length ? runs : null;
  });
  expect(found).toEqual([d.workflow_id]);
});

it('fails visibly with no_credentials when neither an integration nor a town token covers the host', async () => {
  const town = await h.call<{ id: string }>('POST', '/api/towns', { name: 'bare', owner_id: newOwner() });
  const rig = await h.call<{ id: string }>('POST', `/api/towns/${town.body.id}/rigs`, {
    name: 'r',
    git_url: 'https://other.example.com/a/b.git',
  });
  const d = await dispatch(rig.body.id, 'town-none');
  const s = await eventually(async () => {
    const r = await h.call<{ status: string; last_error: { code: string } | null }>('GET', `/api/dispatches/${d.dispatch_id}`);
    return r.body.status === 'credential_error' ? r.body : null;
  });
  expect(s.last_error?.code).toBe('no_credentials');
  expect(containers.pushes('town-none')).toHaveLength(0);

  // Adding the token (a signal to the waiting workflow) resumes it without any polling.
  await h.call('PUT', `/api/towns/${town.body.id}/git-auth`, { tokens: [{ host: 'other.example.com', token: 'late-token' }] });
  const push = await containers.waitForPush('town-none', (p) => p.generation === 1, 10_000);
  expect(push.token).toBe('late-token');
});
