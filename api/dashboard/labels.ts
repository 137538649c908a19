// Words for states: the same status reads the same on every screen, and colour is never the only cue.
import { html, type SafeHtml } from './html';
import { projectTokenScopes } from '../../lib/project-token-fns';
import type { RepoAccess } from '../../lib/providers/types';

export interface IntegrationView {
  id: string;
  owner_id: string;
  provider: 'github' | 'gitlab';
  status: 'active' | 'suspended' | 'deleted' | 'reconnect_required';
  status_reason: string | null;
  account: string | null;
  installation_id: number | null;
  app_type: 'standard' | 'lite' | null;
  repository_count: number;
  repositories_synced_at: string | null;
}

const STATUS_WORDS: Record<string, string> = {
  active: 'active',
  suspended: 'suspended',
  deleted: 'deleted',
  reconnect_required: 'reconnect required',
  starting: 'starting',
  degraded: 'degraded',
  credential_error: 'credential error',
  stopped: 'stopped',
  container_unreachable: 'container unreachable',
};
const STATUS_TONE: Record<string, string> = {
  active: 'ok',
  starting: 'info',
  degraded: 'warn',
  suspended: 'warn',
  reconnect_required: 'warn',
  deleted: 'bad',
  credential_error: 'bad',
  container_unreachable: 'bad',
  stopped: 'muted',
};

/** A status badge: text plus a tone class. */
export function statusBadge(status: string): SafeHtml {
  return html`<span class="badge ${STATUS_TONE[status] ?? 'muted'}" data-status="${status}">${STATUS_WORDS[status] ?? status}</span>`;
}

export const providerName = (p: string) => (p === 'github' ? 'GitHub' : p === 'gitlab' ? 'GitLab' : p);

/** "GitHub App (read/write)", "GitLab OAuth". */
export function integrationKind(i: Pick<IntegrationView, 'provider' | 'app_type'>): string {
  if (i.provider === 'gitlab') return 'GitLab OAuth';
  return i.app_type === 'lite' ? 'GitHub App (read-only, lite)' : 'GitHub App (read/write)';
}

/** How a rig gets its tokens, in words. */
export function credentialWords(
  source: string,
  integration: { provider: string; account: string | null; status: string } | null,
  host: string,
): string {
  if (source === 'integration' && integration) {
    const what = integration.provider === 'github' ? 'GitHub App installation' : 'GitLab OAuth grant of';
    return `${what} ${integration.account ?? '(unknown account)'} (${STATUS_WORDS[integration.status] ?? integration.status})`;
  }
  if (source === 'town_git_auth') return `Town token for ${host}`;
  return 'No credentials: connect an integration or add a town token';
}

/** What to do about an integration that is not active, or null when nothing is needed. */
export function integrationAdvice(i: IntegrationView): SafeHtml | null {
  const again = (label: string) =>
    i.provider === 'gitlab'
      ? html`<a class="button" href="/integrations/gitlab/connect?owner_id=${i.owner_id}">${label}</a>`
      : html`<a class="button" href="/integrations/github/install?owner_id=${i.owner_id}&amp;app_type=${i.app_type ?? 'standard'}">${label}</a>`;
  switch (i.status) {
    case 'suspended':
      // No deep link: the settings URL differs for user and organization accounts, which we do not store.
      return html`<p>The app is suspended on GitHub, so no tokens can be minted. <strong>Unsuspend the app on GitHub</strong>
        (the account's Settings → GitHub Apps → Configure → Unsuspend); running agents get tokens again within seconds.</p>`;
    case 'deleted':
      return html`<p>The ${i.provider === 'github' ? 'app was uninstalled' : 'integration was removed'}. Rigs keep their reference but get no tokens:
        connect again, then reconnect the rigs to the new integration.</p><p>${again(i.provider === 'github' ? 'Install the GitHub App again' : 'Connect GitLab again')}</p>`;
    case 'reconnect_required':
      return html`<p>GitLab no longer accepts the stored grant (revoked or expired). Reconnecting the same GitLab user replaces it, and running agents resume.</p>
        <p>${again('Reconnect GitLab')}</p>`;
    default:
      return null;
  }
}

const SCOPE_WORDS: Record<string, [string, string]> = {
  repository: ['repository only', 'ok'],
  account: ['whole account', 'warn'],
  static: ['static town token', 'muted'],
};

/** How far a token reaches, as a badge (text plus tone); a dash before the first token. */
export function scopeBadge(scope: string | null): SafeHtml {
  if (!scope) return html`<span class="muted">—</span>`;
  const [words, tone] = SCOPE_WORDS[scope] ?? [scope, 'muted'];
  return html`<span class="badge ${tone}" data-scope="${scope}">${words}</span>`;
}

/** What a rig's token reach means, in a sentence after the badge. */
export function scopeWords(
  scope: string | null,
  reason: string | null,
  projectToken: { usable_until: string | null; rotated_at: string | null } | null,
  access: RepoAccess = 'write',
): string {
  if (scope === 'account') return `The GitLab grant stands in: ${reason ?? 'GitLab refused a project access token'}.`;
  if (scope === 'repository' && projectToken) {
    return `A GitLab project access token (Developer, ${projectTokenScopes(access).join(', ')}) shared by the rig’s dispatches, rotated well before it expires and revoked when the rig is idle, disconnected or deleted.`;
  }
  if (scope === 'repository') return 'A token scoped to this repository for each dispatch.';
  if (scope === 'static') return 'The town’s token for this host: whatever it reaches.';
  if (projectToken) return 'Decided at the next dispatch: a project access token wherever GitLab allows one.';
  return '';
}
