// The repository picker's server half: its markup and the integrations it offers. The browser half
// (assets/repo-picker.js) fetches GET /api/integrations/:id/repositories?q= for each of them.
import { html, jsonScript, type SafeHtml } from '../html';
import { integrationKind, providerName, statusBadge, type IntegrationView } from '../labels';

/** Only active integrations can take new rigs (the API answers 409 otherwise). */
export const pickable = (list: IntegrationView[]) => list.filter((i) => i.status === 'active');

/** Picker markup plus the hidden fields it fills; `idPrefix` keeps ids unique on the page. */
export function pickerFields(integrations: IntegrationView[], idPrefix: string): SafeHtml {
  const offered = pickable(integrations);
  const left = integrations.filter((i) => i.status !== 'active');
  const data = offered.map((i) => ({
    id: i.id,
    provider: i.provider,
    account: i.account,
    label: `${providerName(i.provider)} · ${i.account ?? 'unknown'} — ${integrationKind(i)}`,
    // A lite GitHub installation's rigs only read: the form's "Agents may push" box is cleared and locked.
    read_only: i.provider === 'github' && i.app_type === 'lite',
  }));
  return html`<input type="hidden" name="platform_integration_id" data-picked="integration">
<input type="hidden" name="repository_id" data-picked="repository">
<div class="picker" data-picker="${idPrefix}-integrations">
  <div class="picker-bar">
    <label for="${idPrefix}-search">Search repositories</label>
    <div class="row">
      <input id="${idPrefix}-search" type="search" data-picker-search autocomplete="off" placeholder="name or owner/name" aria-describedby="${idPrefix}-status">
      <button type="button" data-picker-refresh>Refresh</button>
    </div>
  </div>
  <p class="picker-status" id="${idPrefix}-status" data-picker-status role="status" aria-live="polite"></p>
  <div class="picker-results" data-picker-results></div>
  <p class="field-error" data-error-for="repository_id" role="alert"></p>
  <p class="field-error" data-error-for="platform_integration_id" role="alert"></p>
  ${left.length ? html`<p class="hint">Not offered until fixed on the integrations page: ${left.map((i, n) => html`${n ? ', ' : ''}${providerName(i.provider)} ${i.account ?? ''} ${statusBadge(i.status)}`)}</p>` : ''}
</div>
${jsonScript(`${idPrefix}-integrations`, data)}
<p class="picked" data-picked-summary aria-live="polite">No repository chosen yet.</p>`;
}
