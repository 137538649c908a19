// An owner's API tokens (create: the secret is shown once; list; delete) and sessions (sign out
// one, sign out everywhere). The forms call the JSON API, so the same access rule applies.
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { owns, touches } from '../../auth/access';
import { ownerParams } from '../../schemas/owners';
import type { Services } from '../../services';
import { html, time } from '../html';
import { page, sendPage } from '../layout';
import { ownerName } from '../viewer';

export const accountPages: FastifyPluginAsyncZod<{ services: Services }> = async (app, { services }) => {
  const config = { config: touches(owns('owner')), schema: { hide: true, params: ownerParams } };
  const crumbs = (ownerId: string, name: string) => [
    { href: '/', label: 'Towns' },
    { href: `/owners/${ownerId}`, label: name },
  ];

  app.get('/owners/:owner_id/tokens', config, async (req, reply) => {
    const ownerId = req.params.owner_id;
    const [owner, { tokens }] = await Promise.all([services.owners.get(ownerId), services.ownerTokens.list(ownerId)]);
    const api = `/api/owners/${ownerId}/tokens`;
    const body = html`<h1>API tokens</h1>
<p class="muted">Tokens act as ${ownerName(owner, ownerId)} on the API (<code>Authorization: Bearer rco_…</code>) and reach only these towns and integrations.</p>
<section class="card" aria-labelledby="new-h">
  <h2 id="new-h">Create a token</h2>
  <form data-api="POST ${api}" data-reveal="token">
    <label for="token-name">Name</label>
    <input id="token-name" name="name" required maxlength="100" placeholder="ci, laptop, …">
    <p class="field-error" data-error-for="name" role="alert"></p>
    <p class="form-error" data-form-error role="alert"></p>
    <button type="submit" class="primary">Create token</button>
    <div class="notice ok" data-revealed hidden role="status">
      <p>Copy the token now: it is not shown again.</p>
      <code class="secret" data-revealed-value></code>
      <p><a href="">Done</a></p>
    </div>
  </form>
</section>
<section class="card" aria-labelledby="list-h">
  <h2 id="list-h">Tokens</h2>
  ${
    tokens.length === 0
      ? html`<p class="empty">No tokens.</p>`
      : html`<div class="table-wrap"><table class="stack">
    <thead><tr><th scope="col">Name</th><th scope="col">Created</th><th scope="col">Last used</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
    <tbody>${tokens.map(
      (
        t,
      ) => html`<tr data-token="${t.id}"><td data-label="Name">${t.name}</td><td data-label="Created">${time(t.created_at)}</td><td data-label="Last used">${time(t.last_used_at)}</td>
      <td><form data-api="DELETE ${api}/${t.id}" data-reload data-confirm="Delete the token ${t.name}? Whatever uses it stops working at once."><p class="form-error" data-form-error role="alert"></p><button type="submit" class="danger">Delete</button></form></td></tr>`,
    )}</tbody></table></div>`
  }
</section>`;
    return sendPage(reply, page({ title: 'API tokens', body, viewer: req.viewer, crumbs: crumbs(ownerId, ownerName(owner, ownerId)) }));
  });

  app.get('/owners/:owner_id/sessions', config, async (req, reply) => {
    const ownerId = req.params.owner_id;
    const [owner, sessions] = await Promise.all([services.owners.get(ownerId), services.sessions.listForOwner(ownerId)]);
    const api = `/api/owners/${ownerId}/sessions`;
    const current = req.principal?.sessionId;
    const body = html`<h1>Sessions</h1>
<p class="muted">Browsers signed in as ${ownerName(owner, ownerId)}. A session lasts 12 hours.</p>
<section class="card" aria-labelledby="sessions-h">
  <h2 id="sessions-h">Signed in</h2>
  ${
    sessions.length === 0
      ? html`<p class="empty">No sessions.</p>`
      : html`<div class="table-wrap"><table class="stack">
    <thead><tr><th scope="col">Browser</th><th scope="col">Signed in</th><th scope="col">Last seen</th><th scope="col">Expires</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
    <tbody>${sessions.map(
      (
        s,
      ) => html`<tr data-session="${s.id}"><td data-label="Browser">${s.userAgent ?? html`<span class="muted">unknown</span>`}${s.id === current ? html` <span class="badge info">this browser</span>` : ''}</td>
      <td data-label="Signed in">${time(s.createdAt.toISOString())}</td><td data-label="Last seen">${time(s.lastSeenAt.toISOString())}</td><td data-label="Expires">${time(s.expiresAt.toISOString())}</td>
      <td><form data-api="DELETE ${api}/${s.id}" data-reload><p class="form-error" data-form-error role="alert"></p><button type="submit">Sign out</button></form></td></tr>`,
    )}</tbody></table></div>`
  }
  <form data-api="DELETE ${api}" data-reload data-confirm="Sign out everywhere, this browser included?">
    <p class="form-error" data-form-error role="alert"></p>
    <button type="submit" class="danger">Sign out everywhere</button>
  </form>
</section>`;
    return sendPage(reply, page({ title: 'Sessions', body, viewer: req.viewer, crumbs: crumbs(ownerId, ownerName(owner, ownerId)) }));
  });
};
