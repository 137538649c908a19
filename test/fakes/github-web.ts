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

/** An `installation` webhook payload for an installation, as GitHub shapes it. */
export function installationPayload(inst: FakeInstallation, slug: string, action: string): Record<string, unknown> {
  return {
    action,
    installation: {
      id: inst.id,
      account: inst.account,
      app_id: Number(inst.appId),
      app_slug: slug,
      repository_selection: inst.selection,
      suspended_at: inst.suspendedAt,
      target_type: inst.account.type,
    },
    sender: { login: inst.account.login, id: inst.account.id, type: 'User' },
  };
}

/** POSTs a webhook the way GitHub does: X-GitHub-Event, X-GitHub-Delivery, X-Hub-Signature-256. */
export async function deliverWebhook(
  url: string,
  secret: string,
  event: string,
  payload: object,
  opts: { deliveryId?: string; badSignature?: boolean } = {},
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
      'x-hub-signature-256': `sha256=${signature}`,
    },
    body,
  });
}
