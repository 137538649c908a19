// /integrations?owner_id=: connect buttons, and each integration with its status, repositories and
// what to do when it needs attention. Connect flows come back here with `connected=<id>`.
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { ownerNamedIn } from '../../auth/access';
import type { Services } from '../../services';
import { integrationsPageQuery } from '../../schemas/connect';
import { html, time, type SafeHtml } from '../html';
import { integrationAdvice, integrationKind, providerName, statusBadge, type IntegrationView } from '../labels';
import { page, sendPage } from '../layout';
import { ownerName } from '../viewer';

function card(i: IntegrationView, highlight: boolean): SafeHtml {
  const advice = integrationAdvice(i);
  return html`<article class="card integration${highlight ? ' highlight' : ''}" aria-labelledby="i-${i.id}" data-integration="${i.id}">
  <h3 id="i-${i.id}">${providerName(i.provider)} · ${i.account ?? 'unknown account'} ${statusBadge(i.status)}</h3>
  <dl class="facts">
    <dt>Kind</dt><dd>${integrationKind(i)}</dd>
    ${i.installation_id !== null ? html`<dt>Installation</dt><dd><code>${i.installation_id}</code></dd>` : ''}
    <dt>Repositories</dt><dd data-repository-count>${i.repository_count}</dd>
    <dt>Last sync</dt><dd>${time(i.repositories_synced_at)}</dd>
    ${i.status_reason ? html`<dt>Reason</dt><dd>${i.status_reason}</dd>` : ''}
  </dl>
  ${advice ? html`<div class="notice warn">${advice}</div>` : ''}
  ${
    i.status === 'deleted'
      ? ''
      : html`<form data-api="GET /api/integrations/${i.id}/repositories?refresh=true" data-reload>
    <p class="form-error" data-form-error role="alert"></p>
    <button type="submit">Refresh repositories</button>
  </form>`
  }
</article>`;
}

function ownerForm(): SafeHtml {
  return html`<form method="get" action="/integrations" class="card narrow">
  <label for="owner-id">Owner id</label>
  <input id="owner-id" name="owner_id" required pattern="[0-9a-fA-F-]{36}" title="an owner id (UUID)" autocomplete="off">
  <button type="submit">Show integrations</button>
</form>`;
}

export const integrationsPage: FastifyPluginAsyncZod<{ services: Services }> = async (app, { services }) => {
  app.get(
    '/integrations',
    { config: ownerNamedIn('query'), schema: { hide: true, querystring: integrationsPageQuery } },
    async (req, reply) => {
      const { connected, result } = req.query;
      const ownerId = req.query.owner_id ?? (req.principal?.kind === 'owner' ? req.principal.ownerId : undefined);
      if (!ownerId)
        return sendPage(
          reply,
          page({
            title: 'Integrations',
            body: html`<h1>Integrations</h1>${ownerForm()}`,
            viewer: req.viewer,
            crumbs: [{ href: '/', label: 'Towns' }],
          }),
        );
      const [{ integrations }, towns, owner] = await Promise.all([
        services.integrations.list(ownerId),
        services.towns.ofOwner(ownerId, 50),
        services.owners.get(ownerId),
      ]);
      const { github, gitlab, githubUser } = services.core;
      // An owner's installation is checked against their GitHub account, through the app's OAuth client.
      const checkable = (appType: 'standard' | 'lite') => req.principal?.kind === 'admin' || githubUser.isConfigured(appType);
      const just = connected ? integrations.find((i) => i.id === connected) : undefined;
      const connectButton = (ok: boolean, href: string, label: string, why: string) =>
        ok
          ? html`<a class="button primary" href="${href}">${label}</a>`
          : html`<span class="button disabled" aria-disabled="true" title="${why}">${label}</span>`;
      const body = html`<h1>Integrations</h1>
<p class="muted">Owner <a href="/owners/${ownerId}" data-owner="${ownerId}">${ownerName(owner, ownerId)}</a>${towns.length ? html` · towns: ${towns.map((t, n) => html`${n ? ', ' : ''}<a href="/towns/${t.id}">${t.name}</a>`)}` : ''}</p>
${just ? html`<div class="notice ok" role="status">${result === 'updated' ? 'Updated' : 'Connected'} ${providerName(just.provider)} account <strong>${just.account ?? 'unknown'}</strong> ${statusBadge(just.status)}.</div>` : ''}
<section class="card" aria-labelledby="connect-h">
  <h2 id="connect-h">Connect</h2>
  <p class="actions">
    ${connectButton(github.hasApp('standard') && checkable('standard'), `/integrations/github/install?owner_id=${ownerId}&app_type=standard`, 'Connect GitHub (read/write)', 'The standard GitHub App (or its OAuth client) is not configured')}
    ${connectButton(github.hasApp('lite') && checkable('lite'), `/integrations/github/install?owner_id=${ownerId}&app_type=lite`, 'Connect GitHub (read-only, lite)', 'The lite GitHub App (or its OAuth client) is not configured')}
    ${connectButton(gitlab.isConfigured(), `/integrations/gitlab/connect?owner_id=${ownerId}`, 'Connect GitLab', 'GitLab OAuth is not configured')}
  </p>
  ${!github.hasApp('standard') || !github.hasApp('lite') || !checkable('standard') || !checkable('lite') || !gitlab.isConfigured() ? html`<p class="hint">Dimmed buttons need configuration on the service (see the README).</p>` : ''}
</section>
<h2>Connected</h2>
${integrations.length === 0 ? html`<p class="empty">Nothing connected yet.</p>` : html`<div class="cards">${integrations.map((i) => card(i, i.id === connected))}</div>`}`;
      return sendPage(reply, page({ title: 'Integrations', body, viewer: req.viewer, crumbs: [{ href: '/', label: 'Towns' }] }));
    },
  );
};
