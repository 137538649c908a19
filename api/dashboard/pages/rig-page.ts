// Rig settings: its connection and where its tokens come from, reconnect (same picker) and
// disconnect, and its dispatches with status, generation, expiry and last error (never a token).
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { gitHost } from '../../../lib/git-host';
import { owns, touches } from '../../auth/access';
import type { Services } from '../../services';
import { rigParams } from '../../schemas/rigs';
import { html, time } from '../html';
import { credentialWords, integrationKind, providerName, scopeBadge, scopeWords, statusBadge } from '../labels';
import { page, sendPage } from '../layout';
import { ACCESS_WORDS, accessField, accessHint } from './access-field';
import { pickable, pickerFields } from './picker';

export const rigPage: FastifyPluginAsyncZod<{ services: Services }> = async (app, { services }) => {
  app.get('/rigs/:rig_id', { config: touches(owns('rig')), schema: { hide: true, params: rigParams } }, async (req, reply) => {
    const rig = await services.rigs.detail(req.params.rig_id);
    const town = await services.towns.getTown(rig.town_id);
    const [{ integrations }, { dispatches }] = await Promise.all([
      services.integrations.list(town.ownerId),
      services.dispatches.listForRig(rig.id),
    ]);
    const full = integrations.find((i) => i.id === rig.integration?.id);
    const source = credentialWords(rig.credential_source, rig.integration, safeHost(rig.git_url));
    const patch = `PATCH /api/rigs/${rig.id}`;
    const lite = full?.provider === 'github' && full.app_type === 'lite';
    const hintKind = lite ? 'github_lite' : rig.integration ? rig.integration.provider : 'town';
    const body = html`<h1>${rig.name}</h1>
<section class="card" aria-labelledby="conn-h">
  <h2 id="conn-h">Connection</h2>
  <dl class="facts">
    <dt>Integration</dt>
    <dd data-rig-integration>${
      rig.integration
        ? html`${full ? integrationKind(full) : providerName(rig.integration.provider)} · ${rig.integration.account ?? 'unknown'} ${statusBadge(rig.integration.status)}
        ${rig.integration.status === 'active' ? '' : html`<br><a href="/integrations?owner_id=${town.ownerId}">What to do about it</a>`}`
        : html`<span class="muted">none (manual URL)</span>`
    }</dd>
    ${rig.repository_full_name ? html`<dt>Repository</dt><dd>${rig.repository_full_name}</dd>` : ''}
    <dt>Git URL</dt><dd><code class="wrap">${rig.git_url}</code></dd>
    <dt>Default branch</dt><dd><code>${rig.default_branch}</code></dd>
    <dt>Credentials</dt><dd data-credential-source="${rig.credential_source}">${source}</dd>
    <dt>Agents may</dt><dd data-rig-access="${rig.access}">${ACCESS_WORDS[rig.access]}</dd>
    <dt>Token reach</dt><dd data-credential-scope="${rig.credential_scope ?? 'undecided'}">${scopeBadge(rig.credential_scope)}
      ${scopeWords(rig.credential_scope, rig.credential_scope_reason, rig.project_token_state, rig.access)}
      ${rig.project_token_state?.rotated_at ? html`<br>Last rotated ${time(rig.project_token_state.rotated_at)}.` : ''}</dd>
  </dl>
  <form data-api="${patch}" data-reload class="access-form" aria-label="Access">
    ${accessField('rig', { push: rig.access === 'write', disabled: lite, hint: accessHint(hintKind) })}
    <p class="form-error" data-form-error role="alert"></p>
    ${lite ? '' : html`<button type="submit">Save access</button>`}
  </form>
  <div class="actions">
    ${
      pickable(integrations).length > 0
        ? html`<details class="reconnect">
      <summary>${rig.integration ? 'Reconnect' : 'Connect to an integration'}</summary>
      <form data-api="${patch}" data-reload data-picker-form>
        <p class="hint">Pick the repository (of any of the owner's active integrations). The git URL and default branch follow it; running agents get a token for it within seconds.</p>
        ${pickerFields(integrations, 're')}
        <p class="form-error" data-form-error role="alert"></p>
        <button type="submit" class="primary">Reconnect</button>
      </form>
    </details>`
        : html`<p><a href="/integrations?owner_id=${town.ownerId}">Connect an integration</a> to pick a repository.</p>`
    }
    ${
      rig.integration
        ? html`<form data-api="${patch}" data-body='{"platform_integration_id":null}' data-reload data-confirm="Disconnect ${rig.name}? It will fall back on the town's tokens for ${safeHost(rig.git_url)}.">
      <p class="form-error" data-form-error role="alert"></p>
      <button type="submit" class="danger">Disconnect</button>
    </form>`
        : ''
    }
  </div>
</section>
<section class="card" aria-labelledby="disp-h">
  <h2 id="disp-h">Dispatches</h2>
  ${
    dispatches.length === 0
      ? html`<p class="empty">No dispatches yet.</p>`
      : html`<div class="table-wrap"><table class="stack">
    <thead><tr><th scope="col">Status</th><th scope="col">Reach</th><th scope="col">Generation</th><th scope="col">Token expires</th><th scope="col">Last error</th><th scope="col">Started</th></tr></thead>
    <tbody>${dispatches.map(
      (d) => html`<tr data-dispatch="${d.id}">
      <td data-label="Status">${statusBadge(d.status)}</td>
      <td data-label="Reach" data-dispatch-scope="${d.credential_scope ?? ''}">${scopeBadge(d.credential_scope)}${d.credential_scope_reason ? html`<br><span class="muted">${d.credential_scope_reason}</span>` : ''}</td>
      <td data-label="Generation">${d.generation}</td>
      <td data-label="Token expires">${d.credential_source === 'town_git_auth' && d.token_expires_at === null && d.generation > 0 ? html`<span class="muted">does not expire</span>` : time(d.token_expires_at, '—')}</td>
      <td data-label="Last error">${d.last_error ? html`<code>${d.last_error.code}</code> ${d.last_error.message}` : html`<span class="muted">none</span>`}</td>
      <td data-label="Started">${time(d.started_at)}</td>
    </tr>`,
    )}</tbody></table></div>`
  }
</section>`;
    return sendPage(
      reply,
      page({
        viewer: req.viewer,
        title: rig.name,
        body,
        scripts: ['repo-picker.js'],
        crumbs: [
          { href: '/', label: 'Towns' },
          { href: `/towns/${town.id}`, label: town.name },
        ],
      }),
    );
  });
};

function safeHost(gitUrl: string): string {
  try {
    return gitHost(gitUrl);
  } catch {
    return 'its host';
  }
}
