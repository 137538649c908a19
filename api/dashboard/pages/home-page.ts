// "/": an owner's own towns; for admin, the most recent towns of everyone with their owners, and
// forms to open a town, create one, or open an owner's view.
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { ownerNamedIn } from '../../auth/access';
import type { Services } from '../../services';
import { openTownQuery } from '../../schemas/connect';
import { html, time } from '../html';
import { messagePage, page, sendPage } from '../layout';
import { ownerOverview } from './owner-pages';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export const homePage: FastifyPluginAsyncZod<{ services: Services }> = async (app, { services }) => {
  app.get('/', { config: ownerNamedIn(), schema: { hide: true } }, async (req, reply) => {
    // A signed-in owner sees their own towns; admin sees everyone's, with whose they are.
    if (req.principal?.kind === 'owner') {
      const { title, body } = await ownerOverview(services, req.principal.ownerId, req.viewer);
      return sendPage(reply, page({ title, body, viewer: req.viewer }));
    }
    const towns = await services.towns.recent(20);
    const names = await services.owners.names([...new Set(towns.map((t) => t.ownerId))]);
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
    <p class="hint" id="town-owner-hint">The owner (UUID) whose integrations the town's rigs may use; a new id creates the owner.</p>
    <p class="field-error" data-error-for="owner_id" role="alert"></p>
    <p class="form-error" data-form-error role="alert"></p>
    <button type="submit" class="primary">Create town</button>
  </form>
</section>
<section class="card" aria-labelledby="owner-h">
  <h2 id="owner-h">An owner's view</h2>
  <form method="get" action="/owners">
    <label for="owner-id">Owner id</label>
    <input id="owner-id" name="id" required pattern="[0-9a-fA-F-]{36}" title="an owner id (UUID)" autocomplete="off">
    <button type="submit">Open</button>
  </form>
</section>
</div>
<h2>Recent towns</h2>
${
  towns.length === 0
    ? html`<p class="empty">No towns yet. Create one above.</p>`
    : html`<div class="table-wrap"><table class="stack" data-towns>
  <thead><tr><th scope="col">Town</th><th scope="col">Owner</th><th scope="col">Created</th></tr></thead>
  <tbody>${towns.map(
    (t) => html`<tr><td data-label="Town"><a href="/towns/${t.id}">${t.name}</a></td>
    <td data-label="Owner"><a href="/owners/${t.ownerId}">${names.get(t.ownerId) ?? html`<code>${t.ownerId.slice(0, 8)}</code>`}</a></td>
    <td data-label="Created">${time(t.createdAt.toISOString())}</td></tr>`,
  )}</tbody></table></div>`
}`;
    return sendPage(reply, page({ title: 'Towns', body, viewer: req.viewer }));
  });

  // "Open" forms: a town or an owner by id.
  for (const [path, noun] of [
    ['/towns', 'town'],
    ['/owners', 'owner'],
  ] as const) {
    app.get(path, { config: ownerNamedIn(), schema: { hide: true, querystring: openTownQuery } }, async (req, reply) => {
      const id = req.query.id ?? '';
      if (!UUID.test(id)) {
        const message = messagePage({
          title: `Not ${noun === 'town' ? 'a town' : 'an owner'} id`,
          code: 'invalid_request',
          message: `id: must be ${noun === 'town' ? 'a town' : 'an owner'} id (UUID)`,
          links: [{ href: '/', label: 'Back' }],
        });
        return sendPage(reply, message, 400);
      }
      return reply.redirect(`${path}/${id.toLowerCase()}`, 302);
    });
  }
};
