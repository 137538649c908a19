// The browser connect flows over HTTP: our routes → the fake provider's pages → our callbacks,
// following each redirect by hand so every hop is checked.
import { randomUUID } from 'node:crypto';
import { signState, verifyState } from '../../api/connect/connect-state';
import type { Harness } from '../helpers/harness';
import { dashboardWorld, raw, startDashboard, type DashboardWorld } from '../dashboard/dashboard-world';

let world: DashboardWorld;
let h: Harness;

beforeAll(async () => {
  world = await dashboardWorld({ lite: false });
  h = await startDashboard(world, { worker: false });
});

afterAll(async () => {
  await h?.close();
  await world?.close();
});

const formPost = (url: string, fields: Record<string, string>) =>
  fetch(url, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(fields).toString(),
  });

interface Integration {
  id: string;
  provider: string;
  status: string;
  account: string;
  repository_count: number;
  installation_id: number | null;
}
const integrationsOf = async (owner: string) =>
  (await h.call<{ integrations: Integration[] }>('GET', `/api/integrations?owner_id=${owner}`)).body.integrations;

/** Our install route → fake GitHub's install page (Install) → where it sends the browser back (the callback URL, with a code). */
async function installGithub(owner: string, account: string): Promise<URL> {
  const start = await raw(h, `/integrations/github/install?owner_id=${owner}&app_type=standard`);
  expect(start.status).toBe(302);
  const installPage = new URL(start.headers.get('location')!);
  expect(`${installPage.origin}${installPage.pathname}`).toBe(`${world.gh.webUrl}/github-apps/rc-standard/installations/new`);
  const state = installPage.searchParams.get('state')!;
  const installed = await formPost(installPage.toString(), { state, account });
  expect(installed.status).toBe(302);
  return new URL(installed.headers.get('location')!);
}

describe('GitHub App installation', () => {
  it('installs through the redirects and registers the installation with its repositories', async () => {
    const owner = randomUUID();
    const setup = await installGithub(owner, 'acme-connect');
    // The app requests user authorization during installation: GitHub comes back to the callback URL with a code.
    expect(`${setup.origin}${setup.pathname}`).toBe(`${world.publicUrl}/login/github/callback`);
    expect(setup.searchParams.get('code')).toMatch(/^[0-9a-f]{20}$/);
    const done = await raw(h, `${setup.pathname}${setup.search}`);
    expect(done.status).toBe(303);
    const [integration] = await integrationsOf(owner);
    expect(integration).toMatchObject({
      provider: 'github',
      status: 'active',
      account: 'acme-connect',
      installation_id: Number(setup.searchParams.get('installation_id')),
      repository_count: 3,
    });
    expect(done.headers.get('location')).toBe(`/integrations?owner_id=${owner}&connected=${integration.id}&result=created`);
    const page = await (await raw(h, done.headers.get('location')!)).text();
    expect(page).toContain('Connected GitHub account <strong>acme-connect</strong>');
  });

  it('refuses a setup callback whose state is forged, expired or from the other flow (400 page)', async () => {
    const owner = randomUUID();
    const setup = await installGithub(owner, 'acme-forged');
    const id = setup.searchParams.get('installation_id')!;
    const good = setup.searchParams.get('state')!;
    const tampered = `${good.slice(0, -2)}xx`;
    const expired = signState(
      h.core.config,
      { purpose: 'github', ownerId: owner, appType: 'standard', binding: 'a:bearer' },
      Date.now() - 11 * 60_000,
    ).value;
    const gitlabState = signState(h.core.config, { purpose: 'gitlab', ownerId: owner, binding: 'a:bearer' }).value;
    for (const [state, reason] of [
      [tampered, 'not issued by this service'],
      [expired, 'expired'],
      [gitlabState, 'gitlab flow'],
      ['', 'missing'],
    ]) {
      const res = await raw(h, `/integrations/github/setup?installation_id=${id}&setup_action=install&state=${encodeURIComponent(state)}`);
      expect(res.status).toBe(400);
      const body = await res.text();
      expect(body).toContain('<code>invalid_state</code>');
      expect(body).toContain(reason);
    }
    expect(await integrationsOf(owner)).toEqual([]);
  });

  it('shows the typed provider error when the installation does not exist', async () => {
    const owner = randomUUID();
    const state = signState(h.core.config, { purpose: 'github', ownerId: owner, appType: 'standard', binding: 'a:bearer' }).value;
    const res = await raw(
      h,
      `/integrations/github/setup?installation_id=999999999&setup_action=install&state=${encodeURIComponent(state)}`,
    );
    expect(res.status).toBe(502);
    const body = await res.text();
    expect(body).toContain('<code>installation_not_found</code>');
    expect(body).toContain(`href="/integrations?owner_id=${owner}"`);
  });

  it('refreshes a known installation that GitHub sends back after an update without a state', async () => {
    const owner = randomUUID();
    const setup = await installGithub(owner, 'acme-update');
    await raw(h, `${setup.pathname}${setup.search}`);
    const id = Number(setup.searchParams.get('installation_id'));
    world.gh.addRepository(id, { name: 'added-later' });
    const res = await raw(h, `/integrations/github/setup?installation_id=${id}&setup_action=update`);
    expect(res.status).toBe(303);
    expect((await integrationsOf(owner))[0]).toMatchObject({ repository_count: 4, status: 'active' });
    expect((await raw(h, `/integrations/github/setup?installation_id=123456&setup_action=update`)).status).toBe(400);
  });

  it('explains a pending installation request instead of failing', async () => {
    const res = await raw(h, '/integrations/github/setup?setup_action=request');
    expect(res.status).toBe(202);
    expect(await res.text()).toContain('Installation requested');
  });

  it('answers 422 with a clear page for an app type that is not configured', async () => {
    const res = await raw(h, `/integrations/github/install?owner_id=${randomUUID()}&app_type=lite`);
    expect(res.status).toBe(422);
    const body = await res.text();
    expect(body).toContain('<code>app_not_configured</code>');
    expect(body).toContain('GITHUB_LITE_APP_ID');
    const bad = await raw(h, `/integrations/github/install?owner_id=not-a-uuid`);
    expect(bad.status).toBe(400);
    expect(await bad.text()).toContain('owner_id');
  });
});

describe('GitLab OAuth', () => {
  /** Our connect route → fake GitLab's authorize page (decision) → our callback URL. */
  async function authorize(owner: string, decision: 'allow' | 'deny'): Promise<URL> {
    const start = await raw(h, `/integrations/gitlab/connect?owner_id=${owner}`);
    expect(start.status).toBe(302);
    const url = new URL(start.headers.get('location')!);
    expect(`${url.origin}${url.pathname}`).toBe(`${world.gl.baseUrl}/oauth/authorize`);
    expect(Object.fromEntries(url.searchParams)).toMatchObject({
      client_id: 'rc-gitlab-client',
      redirect_uri: `${world.publicUrl}/integrations/gitlab/callback`,
      response_type: 'code',
      code_challenge_method: 'S256',
      scope: 'api read_user write_repository',
    });
    expect(url.searchParams.get('code_challenge')).toMatch(/^[\w-]{43}$/);
    expect(verifyState(h.core.config, url.searchParams.get('state'), 'gitlab')).toMatchObject({ ok: true, state: { ownerId: owner } });
    expect((await fetch(url)).status).toBe(200); // the consent page
    const decided = await formPost(`${world.gl.baseUrl}/oauth/authorize`, { ...Object.fromEntries(url.searchParams), decision });
    expect(decided.status).toBe(302);
    return new URL(decided.headers.get('location')!);
  }

  it('connects through authorize → callback with PKCE, and a second connect fixes reconnect_required in place', async () => {
    const user = world.gl.addUser({ username: 'gl-alice' });
    world.gl.addProjects(user.id, 2);
    world.gl.setAuthorizeUser(user.id);
    const owner = randomUUID();
    const callback = await authorize(owner, 'allow');
    const done = await raw(h, `${callback.pathname}${callback.search}`);
    expect(done.status).toBe(303);
    const [integration] = await integrationsOf(owner);
    expect(integration).toMatchObject({ provider: 'gitlab', status: 'active', account: 'gl-alice', repository_count: 2 });
    expect(done.headers.get('location')).toBe(`/integrations?owner_id=${owner}&connected=${integration.id}&result=created`);

    // The same callback again: its state was used, so the code is not even tried (GitLab's are single-use too).
    const exchanges = world.gl.stats.codeExchanges;
    const replay = await raw(h, `${callback.pathname}${callback.search}`);
    expect(replay.status).toBe(400);
    expect(await replay.text()).toMatch(/<code>invalid_state<\/code>[^]*already used/);
    expect(world.gl.stats.codeExchanges).toBe(exchanges);

    world.gl.revokeGrant(user.id);
    await h.core.db.platformIntegration.update({ where: { id: integration.id }, data: { status: 'reconnect_required' } });
    expect(await (await raw(h, `/integrations?owner_id=${owner}`)).text()).toContain('Reconnect GitLab');
    const again = await authorize(owner, 'allow');
    const fixed = await raw(h, `${again.pathname}${again.search}`);
    expect(fixed.headers.get('location')).toContain('result=updated');
    expect(await integrationsOf(owner)).toMatchObject([{ id: integration.id, status: 'active' }]);
  });

  it('shows a clear page when access is denied on GitLab, and connects nothing', async () => {
    const owner = randomUUID();
    const callback = await authorize(owner, 'deny');
    expect(callback.searchParams.get('error')).toBe('access_denied');
    const res = await raw(h, `${callback.pathname}${callback.search}`);
    expect(res.status).toBe(400);
    const body = await res.text();
    expect(body).toContain('GitLab access was denied');
    expect(body).toContain(`href="/integrations/gitlab/connect?owner_id=${owner}"`);
    expect(body).toContain('<code>access_denied</code>');
    expect(await integrationsOf(owner)).toEqual([]);
  });

  it('shows only its own words for any other error GitLab (or anyone crafting the URL) puts in the callback', async () => {
    const owner = randomUUID();
    const callback = await authorize(owner, 'deny');
    callback.searchParams.set('error', 'Your account is locked: call +1 555 0100');
    const res = await raw(h, `${callback.pathname}${callback.search}`);
    expect(res.status).toBe(400);
    const body = await res.text();
    expect(body).toContain('<code>authorization_failed</code>');
    expect(body).not.toContain('555 0100');
    expect(await integrationsOf(owner)).toEqual([]);
  });

  it('refuses a callback with a forged state before exchanging the code', async () => {
    const exchanges = world.gl.stats.codeExchanges;
    const res = await raw(h, '/integrations/gitlab/callback?code=abc&state=v1.e30.forged');
    expect(res.status).toBe(400);
    expect(await res.text()).toContain('<code>invalid_state</code>');
    expect(world.gl.stats.codeExchanges).toBe(exchanges);
  });

  it('keeps codes and tokens out of every log line', () => {
    const logs = h.logs.join('\n');
    for (const secret of [...world.gl.issuedCodes(), ...world.gl.issuedTokens()]) expect(logs).not.toContain(secret);
  });
});
