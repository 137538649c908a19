// An owner's view: their towns (with a form to create one), their integrations and accounts, their
// API tokens and sessions. `/` shows it to a signed-in owner; admin opens any owner's at
// /owners/:owner_id (the owner column on the home page links there).
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { owns, touches } from '../../auth/access';
import { ownerParams } from '../../schemas/owners';
import type { Services } from '../../services';
import { html, type SafeHtml } from '../html';
import { providerName } from '../labels';
import { page, sendPage } from '../layout';
import { ownerName, type Viewer } from '../viewer';

/** The owner view's body (also the home page of a signed-in owner). */
export async function ownerOverview(
  services: Services,
  ownerId: string,
  viewer: Viewer | null,
): Promise<{ title: string; body: SafeHtml }> {
  const [owner, towns, { integrations }] = await Promise.all([
    services.owners.get(ownerId),
    services.towns.ofOwner(ownerId, 200),
    services.integrations.list(ownerId),
  ]);
  const name = ownerName(owner, ownerId);
  const self = viewer?.kind === 'owner' && viewer.ownerId === ownerId;
  const title = self ? 'Your towns' : `Towns of ${name}`;
  const base = `/owners/${ownerId}`;
  const body = html`<h1>${title}</h1>
<p class="muted">${self ? 'Signed in as' : 'Owner'} <strong>${name}</strong>${owner?.logins.length ? html` · ${owner.logins.map((l, n) => html`${n ? ', ' : ''}${providerName(l.provider)} ${l.login}`)}` : ''} · <code>${ownerId}</code></p>
<div class="grid">
<section class="card" aria-labelledby="towns-h">
  <h2 id="towns-h">Towns</h2>
  ${
    towns.length === 0
      ? html`<p class="empty">No towns yet. Create one.</p>`
      : html`<ul class="list" data-towns>${towns.map((t) => html`<li><a href="/towns/${t.id}">${t.name}</a></li>`)}</ul>`
  }
</section>
<section class="card" aria-labelledby="create-h">
  <h2 id="create-h">Create a town</h2>
  <form data-api="POST /api/towns" data-body='${JSON.stringify({ owner_id: ownerId })}' data-redirect="/towns/{id}">
    <label for="town-name">Name</label>
    <input id="town-name" name="name" required maxlength="200">
    <p class="field-error" data-error-for="name" role="alert"></p>
    <p class="form-error" data-form-error role="alert"></p>
    <button type="submit" class="primary">Create town</button>
  </form>
</section>
<section class="card" aria-labelledby="more-h">
  <h2 id="more-h">Account</h2>
  <ul class="list">
    <li><a href="/integrations?owner_id=${ownerId}">Integrations</a> <span class="muted">${integrations.length} connected</span></li>
    <li><a href="${base}/tokens">API tokens</a> <span class="muted">for your own automation</span></li>
    <li><a href="${base}/sessions">Sessions</a> <span class="muted">where you are signed in</span></li>
  </ul>
</section>
</div>`;
  return { title, body };
}

export const ownerPages: FastifyPluginAsyncZod<{ services: Services }> = async (app, { services }) => {
  app.get('/owners/:owner_id', { config: touches(owns('owner')), schema: { hide: true, params: ownerParams } }, async (req, reply) => {
    const { title, body } = await ownerOverview(services, req.params.owner_id, req.viewer);
    return sendPage(reply, page({ title, body, viewer: req.viewer, crumbs: [{ href: '/', label: 'Towns' }] }));
  });
};
