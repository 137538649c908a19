// Create a rig: "From integration" (repository picker; the default when the owner has an active
// integration) or "Manual URL" (https only, falls back on the town's tokens).
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { owns, touches } from '../../auth/access';
import type { Services } from '../../services';
import { townParams } from '../../schemas/towns';
import { html } from '../html';
import { page, sendPage } from '../layout';
import { accessField, accessHint } from './access-field';
import { pickable, pickerFields } from './picker';

export const rigNewPage: FastifyPluginAsyncZod<{ services: Services }> = async (app, { services }) => {
  app.get('/towns/:town_id/rigs/new', { config: touches(owns('town')), schema: { hide: true, params: townParams } }, async (req, reply) => {
    const town = await services.towns.getTown(req.params.town_id);
    const { integrations } = await services.integrations.list(town.ownerId);
    const fromIntegration = pickable(integrations).length > 0;
    const action = `POST /api/towns/${town.id}/rigs`;
    const tab = (id: string, label: string, selected: boolean) =>
      html`<button type="button" role="tab" id="tab-${id}" aria-controls="panel-${id}" aria-selected="${String(selected)}" tabindex="${selected ? '0' : '-1'}">${label}</button>`;
    const body = html`<h1>Create a rig in ${town.name}</h1>
<div class="tabs">
  <div role="tablist" aria-label="How to connect the rig">
    ${tab('integration', 'From integration', fromIntegration)}
    ${tab('manual', 'Manual URL', !fromIntegration)}
  </div>

  <section role="tabpanel" id="panel-integration" aria-labelledby="tab-integration" ${fromIntegration ? '' : html`hidden`}>
    ${
      fromIntegration
        ? html`<form data-api="${action}" data-redirect="/rigs/{id}" data-picker-form class="card">
      ${pickerFields(integrations, 'new')}
      <label for="pick-name">Rig name</label>
      <input id="pick-name" name="name" required maxlength="200" data-fill-name>
      <p class="field-error" data-error-for="name" role="alert"></p>
      <label for="pick-url">Git URL</label>
      <input id="pick-url" readonly data-fill="clone_url" aria-describedby="pick-url-hint">
      <p class="hint" id="pick-url-hint">From the repository, as the provider gives it.</p>
      <label for="pick-branch">Default branch</label>
      <input id="pick-branch" readonly data-fill="default_branch">
      ${accessField('pick', { push: true, hint: accessHint('picker') })}
      <p class="form-error" data-form-error role="alert"></p>
      <button type="submit" class="primary">Create rig</button>
    </form>`
        : html`<div class="card"><p class="empty">The owner has no active integration.</p>
      <p><a class="button" href="/integrations?owner_id=${town.ownerId}">Connect integration</a></p></div>`
    }
  </section>

  <section role="tabpanel" id="panel-manual" aria-labelledby="tab-manual" ${fromIntegration ? html`hidden` : ''}>
    <form data-api="${action}" data-redirect="/rigs/{id}" class="card">
      <label for="man-name">Rig name</label>
      <input id="man-name" name="name" required maxlength="200">
      <p class="field-error" data-error-for="name" role="alert"></p>
      <label for="man-url">Git URL</label>
      <input id="man-url" name="git_url" required inputmode="url" placeholder="https://github.com/owner/repo.git" autocomplete="off" aria-describedby="man-url-hint">
      <p class="hint" id="man-url-hint">https:// only, without credentials; private repositories need a town token for the host.</p>
      <p class="field-error" data-error-for="git_url" role="alert"></p>
      <label for="man-branch">Default branch</label>
      <input id="man-branch" name="default_branch" placeholder="main" autocomplete="off">
      <p class="field-error" data-error-for="default_branch" role="alert"></p>
      <p class="form-error" data-form-error role="alert"></p>
      <button type="submit" class="primary">Create rig</button>
    </form>
  </section>
</div>`;
    return sendPage(
      reply,
      page({
        viewer: req.viewer,
        title: 'Create rig',
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
