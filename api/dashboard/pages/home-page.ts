// "/": open a town by id, create one, or go to an owner's integrations, and the most recent towns.
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { ownerNamedIn } from '../../auth/access';
import type { Services } from '../../services';
import { openTownQuery } from '../../schemas/connect';
import { html } from '../html';
import { messagePage, page, sendPage } from '../layout';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export const homePage: FastifyPluginAsyncZod<{ services: Services }> = async (app, { services }) => {
  app.get('/', { config: ownerNamedIn(), schema: { hide: true } }, async (req, reply) => {
    const towns =
      req.principal?.kind === 'owner' ? await services.towns.ofOwner(req.principal.ownerId, 200) : await services.towns.recent(20);
    const body = html`<h1>Towns</h1>
<div class="grid">
<section class="card" aria-labelledby="open-h">
  <h2 id="open-h">Open a town</h2>
  <form method="get" action="/towns">
    <label for="open-id">Town id</label>
    <input id="open-id" name="id" required pattern="[0-9a-fA-F-]{36}" title="a town id (UUID)" autocomplete="off">
    <button type="submit">Open</button>
  </form>
</section>
<section class="card" aria-labelledby="create-h">
  <h2 id="create-h">Create a town</h2>
  <form data-api="POST /api/towns" data-redirect="/towns/{id}">
    <label for="town-name">Name</label>
    <input id="town-name" name="name" required maxlength="200">
    <p class="field-error" data-error-for="name" role="alert"></p>
    <label for="town-owner">Owner id</label>
    <input id="town-owner" name="owner_id" required autocomplete="off" aria-describedby="town-owner-hint">
    <p class="hint" id="town-owner-hint">The user (UUID) whose integrations the town's rigs may use.</p>
    <p class="field-error" data-error-for="owner_id" role="alert"></p>
    <p class="form-error" data-form-error role="alert"></p>
    <button type="submit" class="primary">Create town</button>
  </form>
</section>
<section class="card" aria-labelledby="owner-h">
  <h2 id="owner-h">Integrations</h2>
  <form method="get" action="/integrations">
    <label for="owner-id">Owner id</label>
    <input id="owner-id" name="owner_id" required pattern="[0-9a-fA-F-]{36}" title="an owner id (UUID)" autocomplete="off">
    <button type="submit">Show integrations</button>
  </form>
</section>
</div>
<h2>Recent towns</h2>
${
  towns.length === 0
    ? html`<p class="empty">No towns yet. Create one above.</p>`
    : html`<ul class="list">${towns.map((t) => html`<li><a href="/towns/${t.id}">${t.name}</a> <span class="muted">owner <code>${t.ownerId}</code></span></li>`)}</ul>`
}`;
    return sendPage(reply, page({ title: 'Towns', body }));
  });

  app.get('/towns', { config: ownerNamedIn(), schema: { hide: true, querystring: openTownQuery } }, async (req, reply) => {
    const id = req.query.id ?? '';
    if (!UUID.test(id)) {
      return sendPage(
        reply,
        messagePage({
          title: 'Not a town id',
          code: 'invalid_request',
          message: 'id: must be a town id (UUID)',
          links: [{ href: '/', label: 'Back' }],
        }),
        400,
      );
    }
    return reply.redirect(`/towns/${id.toLowerCase()}`, 302);
  });
};
