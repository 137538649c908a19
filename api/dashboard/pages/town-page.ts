// Town settings: the owner's integrations, the town's static git tokens (never shown, only their
// fingerprints) with a form to replace them, and the town's rigs.
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { owns, touches } from '../../auth/access';
import type { Services } from '../../services';
import { townParams } from '../../schemas/towns';
import { html } from '../html';
import { integrationKind, providerName, statusBadge } from '../labels';
import { page, sendPage } from '../layout';
import { ownerName } from '../viewer';

/** One host's inputs; `i` is an index, or __N__ in the template the Add button copies. */
function tokenRow(i: number | '__N__', host = '', username = '') {
  return html`<fieldset class="token-row">
  <legend>Host ${i === '__N__' ? '__L__' : i + 1}</legend>
  <div class="field"><label for="t${i}-host">Host</label><input id="t${i}-host" name="tokens.${i}.host" value="${host}" placeholder="github.com" autocomplete="off">
  <p class="field-error" data-error-for="tokens.${i}.host" role="alert"></p></div>
  <div class="field"><label for="t${i}-username">Username <span class="muted">(optional)</span></label><input id="t${i}-username" name="tokens.${i}.username" value="${username}" autocomplete="off">
  <p class="field-error" data-error-for="tokens.${i}.username" role="alert"></p></div>
  <div class="field"><label for="t${i}-token">Token</label><input id="t${i}-token" name="tokens.${i}.token" type="password" autocomplete="new-password">
  <p class="field-error" data-error-for="tokens.${i}.token" role="alert"></p></div>
</fieldset>`;
}

export const townPage: FastifyPluginAsyncZod<{ services: Services }> = async (app, { services }) => {
  app.get('/towns/:town_id', { config: touches(owns('town')), schema: { hide: true, params: townParams } }, async (req, reply) => {
    const town = await services.towns.detail(req.params.town_id);
    const owner = await services.owners.get(town.owner_id);
    const integrationsHref = `/integrations?owner_id=${town.owner_id}`;
    const names = new Map(town.integrations.map((i) => [i.id, `${providerName(i.provider)} · ${i.account ?? 'unknown'}`]));
    const body = html`<h1>${town.name}</h1>
<p class="muted">Town <code>${town.id}</code> · owner <a href="/owners/${town.owner_id}">${ownerName(owner, town.owner_id)}</a></p>

<section class="card" aria-labelledby="int-h">
  <h2 id="int-h">Integrations</h2>
  ${
    town.integrations.length === 0
      ? html`<p class="empty">The owner has no integrations yet, so rigs can only use manual URLs and town tokens.</p>
      <p><a class="button primary" href="${town.connect_integration_url ?? integrationsHref}">Connect integration</a></p>`
      : html`<div class="table-wrap"><table class="stack">
      <thead><tr><th scope="col">Provider</th><th scope="col">Account</th><th scope="col">Status</th></tr></thead>
      <tbody>${town.integrations.map((i) => html`<tr><td data-label="Provider">${integrationKind(i)}</td><td data-label="Account">${i.account ?? '—'}</td><td data-label="Status">${statusBadge(i.status)}</td></tr>`)}</tbody>
      </table></div>
      <p><a href="${integrationsHref}">Manage integrations</a></p>`
  }
</section>

<section class="card" aria-labelledby="rigs-h">
  <h2 id="rigs-h">Rigs</h2>
  ${
    town.rigs.length === 0
      ? html`<p class="empty">No rigs yet.</p>`
      : html`<ul class="list">${town.rigs.map(
          (
            r,
          ) => html`<li><a href="/rigs/${r.id}">${r.name}</a>${r.access === 'read' ? html` <span class="badge muted" data-rig-access="read">read-only</span>` : ''}
        <span class="muted">${r.platform_integration_id ? `via ${names.get(r.platform_integration_id) ?? 'integration'}` : 'manual URL'}</span>
        <br><code class="wrap">${r.git_url}</code></li>`,
        )}</ul>`
  }
  <p><a class="button primary" href="/towns/${town.id}/rigs/new">Create rig</a></p>
</section>

<section class="card" aria-labelledby="auth-h">
  <h2 id="auth-h">Git tokens (fallback for rigs without an integration)</h2>
  ${
    town.git_auth.length === 0
      ? html`<p class="empty">No town tokens.</p>`
      : html`<div class="table-wrap"><table class="stack">
      <thead><tr><th scope="col">Host</th><th scope="col">Username</th><th scope="col">Fingerprint</th><th scope="col">Updated</th></tr></thead>
      <tbody>${town.git_auth.map((g) => html`<tr><td data-label="Host">${g.host}</td><td data-label="Username">${g.username ?? html`<span class="muted">default</span>`}</td><td data-label="Fingerprint"><code>${g.fingerprint}</code></td><td data-label="Updated">${g.updated_at.slice(0, 10)}</td></tr>`)}</tbody>
      </table></div>`
  }
  <details>
    <summary>Replace town tokens</summary>
    <form data-api="PUT /api/towns/${town.id}/git-auth" data-body='{"tokens":[]}' data-reload data-token-form>
      <p class="hint">Saving replaces <strong>all</strong> of the town's tokens. Tokens are never shown again, so enter every one you want to keep;
        leave a row empty to drop it.</p>
      <div data-rows>
        ${[...town.git_auth.map((g, i) => tokenRow(i, g.host, g.username ?? '')), tokenRow(town.git_auth.length)]}
      </div>
      <template data-row-template>${tokenRow('__N__')}</template>
      <p class="form-error" data-form-error role="alert"></p>
      <p class="actions"><button type="button" data-add-row>Add host</button> <button type="submit" class="primary">Save tokens</button></p>
    </form>
  </details>
</section>`;
    return sendPage(reply, page({ title: town.name, body, viewer: req.viewer, crumbs: [{ href: '/', label: 'Towns' }] }));
  });
};
