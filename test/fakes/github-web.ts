// The browser-facing side of the fake GitHub (the app's "Install" page) and webhook deliveries as
// GitHub sends them (headers, HMAC signature).
import { createHmac, randomUUID } from 'node:crypto';
import { escapeHtml } from './fake-http';
import type { FakeInstallation } from './github-state';

/** Install page paths: GHES says /github-apps/<slug>, github.com /apps/<slug>. */
export const INSTALL_PATH = /^\/(?:github-apps|apps)\/([^/]+)\/installations\/new$/;

/** The app's installation page: an account name and an Install button, posting back to itself. */
export function installPageHtml(slug: string, state: string, action: string, signedInAs: string): string {
  return `<!doctype html>
<html><head><title>Install ${escapeHtml(slug)}</title></head>
<body>
  <h1>Install ${escapeHtml(slug)}</h1>
  <p>Signed in as ${escapeHtml(signedInAs)}</p>
  <form method="post" action="${escapeHtml(action)}">
    <input type="hidden" name="state" value="${escapeHtml(state)}">
    <label for="account">Account</label>
    <input id="account" name="account" value="fake-org" required>
    <button type="submit">Install</button>
  </form>
</body></html>`;
}

/** Shown when an app has no setup URL to send the browser back to. */
export function installedPageHtml(slug: string, installationId: number): string {
  return `<!doctype html><html><body><h1>${escapeHtml(slug)} installed</h1><p>installation ${installationId}</p></body></html>`;
}

/** Where GitHub sends the browser after an install: the setup (or callback) URL with installation_id, setup_action, state and a code when asked for. */
export function setupRedirect(setupUrl: string, installationId: number, state: string, code?: string): string {
  const url = new URL(setupUrl);
  if (code) url.searchParams.set('code', code);
  url.searchParams.set('installation_id', String(installationId));
  url.searchParams.set('setup_action', 'install');
  if (state) url.searchParams.set('state', state);
  return url.toString();
}

/** A user or organization as webhook payloads show it (`sender`, `installation.account`). */
export function webhookUser(account: { login: string; id: number; type: string }): Record<string, unknown> {
  const api = `https://api.github.com/users/${account.login}`;
  return {
    login: account.login,
    id: account.id,
    node_id: Buffer.from(`04:${account.type}${account.id}`).toString('base64'),
    avatar_url: `https://avatars.githubusercontent.com/u/${account.id}?v=4`,
    gravatar_id: '',
    url: api,
    html_url: `https://github.com/${account.login}`,
    followers_url: `${api}/followers`,
    following_url: `${api}/following{/other_user}`,
    gists_url: `${api}/gists{/gist_id}`,
    starred_url: `${api}/starred{/owner}{/repo}`,
    subscriptions_url: `${api}/subscriptions`,
    organizations_url: `${api}/orgs`,
    repos_url: `${api}/repos`,
    events_url: `${api}/events{/privacy}`,
    received_events_url: `${api}/received_events`,
    type: account.type,
    user_view_type: 'public',
    site_admin: false,
  };
}

/** A repository as installation events list it: five fields, not the REST API's hundred. */
export function webhookRepository(repo: { id: number; name: string; full_name: string; private: boolean }): Record<string, unknown> {
  return {
    id: repo.id,
    node_id: Buffer.from(`010:Repository${repo.id}`).toString('base64'),
    name: repo.name,
    full_name: repo.full_name,
    private: repo.private,
  };
}

/** The `installation` object every installation event carries; `updated_at` moves with each event, as on GitHub. */
function installationJson(inst: FakeInstallation, app: { slug: string; permissions: Record<string, string> }): Record<string, unknown> {
  return {
    id: inst.id,
    client_id: `Iv23li${String(inst.appId).padStart(14, '0')}`,
    account: webhookUser(inst.account),
    repository_selection: inst.selection,
    access_tokens_url: `https://api.github.com/app/installations/${inst.id}/access_tokens`,
    repositories_url: 'https://api.github.com/installation/repositories',
    html_url: `https://github.com/organizations/${inst.account.login}/settings/installations/${inst.id}`,
    app_id: Number(inst.appId),
    app_slug: app.slug,
    target_id: inst.account.id,
    target_type: inst.account.type,
    permissions: app.permissions,
    events: [],
    created_at: '2026-01-05T10:00:00.000Z',
    updated_at: new Date().toISOString(),
    single_file_name: null,
    has_multiple_single_files: false,
    single_file_paths: [],
    suspended_by: inst.suspendedAt ? webhookUser({ login: 'site-admin', id: 1, type: 'User' }) : null,
    suspended_at: inst.suspendedAt,
  };
}

/** An `installation` webhook payload (created, deleted, suspend, unsuspend, …), repositories included, as GitHub shapes it. */
export function installationPayload(
  inst: FakeInstallation,
  app: { slug: string; permissions: Record<string, string> },
  action: string,
  repositories: Array<{ id: number; name: string; full_name: string; private: boolean }>,
): Record<string, unknown> {
  return {
    action,
    installation: installationJson(inst, app),
    repositories: repositories.map(webhookRepository),
    requester: null,
    sender: webhookUser({ login: inst.account.login, id: inst.account.id, type: 'User' }),
  };
}

/** An `installation_repositories` payload (added or removed). */
export function installationRepositoriesPayload(
  inst: FakeInstallation,
  app: { slug: string; permissions: Record<string, string> },
  change: { added: FakeRepoRef[]; removed: FakeRepoRef[] },
): Record<string, unknown> {
  return {
    action: change.added.length > 0 ? 'added' : 'removed',
    installation: installationJson(inst, app),
    repository_selection: inst.selection,
    repositories_added: change.added.map(webhookRepository),
    repositories_removed: change.removed.map(webhookRepository),
    requester: null,
    sender: webhookUser({ login: inst.account.login, id: inst.account.id, type: 'User' }),
  };
}

type FakeRepoRef = { id: number; name: string; full_name: string; private: boolean };

/** POSTs a webhook the way GitHub does: X-GitHub-Event, X-GitHub-Delivery, X-Hub-Signature-256. */
export async function deliverWebhook(
  url: string,
  secret: string,
  event: string,
  payload: object,
  opts: { deliveryId?: string; badSignature?: boolean; appId?: string } = {},
): Promise<Response> {
  const body = JSON.stringify(payload);
  const signingSecret = opts.badSignature ? `${secret}-wrong` : secret;
  const signature = createHmac('sha256', signingSecret).update(body).digest('hex');
  return fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'user-agent': 'GitHub-Hookshot/fake',
      'x-github-event': event,
      'x-github-delivery': opts.deliveryId ?? randomUUID(),
      'x-github-hook-installation-target-type': 'integration',
      ...(opts.appId ? { 'x-github-hook-installation-target-id': opts.appId } : {}),
      'x-hub-signature-256': `sha256=${signature}`,
    },
    body,
  });
}
