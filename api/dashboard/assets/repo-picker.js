// The repository picker: searches each active integration's cached repositories through
// GET /api/integrations/:id/repositories?q= (refresh=true asks the providers again), groups them by
// provider and fills the form's hidden ids, name, git URL and default branch from the choice.
'use strict';

(function () {
  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function initPicker(form) {
    const root = form.querySelector('[data-picker]');
    const integrations = JSON.parse(document.getElementById(root.dataset.picker).textContent);
    const search = root.querySelector('[data-picker-search]');
    const status = root.querySelector('[data-picker-status]');
    const results = root.querySelector('[data-picker-results]');
    const pickedIntegration = form.querySelector('[data-picked="integration"]');
    const pickedRepository = form.querySelector('[data-picked="repository"]');
    const summary = form.querySelector('[data-picked-summary]');
    const repoError = root.querySelector('[data-error-for="repository_id"]');
    const nameInput = form.querySelector('[data-fill-name]');
    const push = form.querySelector('[data-access-field] input');
    const pushHint = form.querySelector('[data-access-hint]');
    const pushHintText = pushHint ? pushHint.textContent : '';
    let pushWanted = push ? push.checked : false;
    if (push) push.addEventListener('change', () => (pushWanted = push.checked));
    let autoName = '';
    let seq = 0;
    let timer;
    // Providers are listed in a stable order: GitHub groups first, then GitLab.
    const order = integrations.map((_, n) => n).sort((a, b) => integrations[a].provider.localeCompare(integrations[b].provider));

    function choose(integration, repo) {
      pickedIntegration.value = integration.id;
      pickedRepository.value = String(repo.id);
      form.querySelectorAll('[data-fill]').forEach((input) => (input.value = repo[input.dataset.fill] || ''));
      if (nameInput && (nameInput.value === '' || nameInput.value === autoName)) nameInput.value = autoName = repo.name;
      summary.textContent = 'Chosen: ' + repo.full_name + ' (' + integration.label + ')';
      repoError.textContent = '';
      if (push) {
        // A lite installation only reads: the box is cleared and locked (and sends nothing) while it is chosen.
        push.disabled = Boolean(integration.read_only);
        push.checked = integration.read_only ? false : pushWanted;
        pushHint.textContent = integration.read_only
          ? 'A lite (read-only) GitHub installation only reads: its rigs cannot push.'
          : pushHintText;
      }
    }

    function option(integration, repo) {
      const label = el('label', 'repo');
      const input = el('input');
      input.type = 'radio';
      input.name = root.dataset.picker + '-choice';
      input.value = integration.id + ':' + repo.id;
      input.checked = pickedIntegration.value === integration.id && pickedRepository.value === String(repo.id);
      input.addEventListener('change', () => choose(integration, repo));
      label.append(input, el('span', 'name', repo.full_name));
      if (repo.private) label.append(el('span', 'badge muted', 'private'));
      label.append(el('span', 'muted', repo.default_branch));
      return label;
    }

    function render(answers, q) {
      results.replaceChildren();
      let total = 0;
      let failed = 0;
      for (const n of order) {
        const integration = integrations[n];
        const res = answers[n];
        const group = el('fieldset');
        group.append(el('legend', '', integration.label));
        if (!res.ok) {
          const error = (res.data && res.data.error) || {};
          group.append(el('p', 'field-error', (error.code || 'error') + ': ' + (error.message || 'could not load repositories')));
          failed++;
        } else if (res.data.repositories.length === 0) {
          group.append(el('p', 'empty', q ? 'No repositories match.' : 'No repositories: grant access on the provider, then Refresh.'));
        } else {
          total += res.data.repositories.length;
          for (const repo of res.data.repositories) group.append(option(integration, repo));
        }
        results.append(group);
      }
      status.classList.toggle('error', failed > 0);
      if (failed === integrations.length) status.textContent = 'Could not load repositories (see below). Try Refresh.';
      else if (total === 0) status.textContent = q ? 'No repositories match "' + q + '".' : 'No repositories yet.';
      else {
        const noun = total === 1 ? ' repository' : ' repositories';
        const match = q ? (total === 1 ? ' matches "' : ' match "') + q + '"' : '';
        status.textContent = total + noun + match + (failed ? '; some integrations failed (see below).' : '.');
      }
    }

    async function load(refresh) {
      const mine = ++seq;
      const q = search.value.trim();
      status.classList.remove('error');
      status.textContent = refresh ? 'Refreshing repositories from the providers…' : 'Loading repositories…';
      root.setAttribute('aria-busy', 'true');
      const query = (id) => {
        const params = new URLSearchParams();
        if (q) params.set('q', q);
        if (refresh) params.set('refresh', 'true');
        return '/api/integrations/' + encodeURIComponent(id) + '/repositories' + (params.toString() ? '?' + params : '');
      };
      const answers = await Promise.all(integrations.map((i) => window.RC.api('GET', query(i.id))));
      if (mine !== seq) return; // a newer search is under way
      root.removeAttribute('aria-busy');
      render(answers, q);
    }

    search.addEventListener('input', () => {
      clearTimeout(timer);
      timer = setTimeout(() => load(false), 250);
    });
    search.addEventListener('keydown', (e) => {
      if (e.key !== 'Enter') return;
      e.preventDefault(); // Enter searches; it must not submit the rig form
      clearTimeout(timer);
      load(false);
    });
    root.querySelector('[data-picker-refresh]').addEventListener('click', () => load(true));
    form.addEventListener('rc:before-submit', (e) => {
      if (pickedRepository.value) return;
      e.preventDefault();
      repoError.textContent = 'Choose a repository first.';
      search.focus();
    });

    // A picker in a closed <details> (rig reconnect) loads when opened, not with the page.
    const details = root.closest('details');
    if (details && !details.open) details.addEventListener('toggle', () => details.open && seq === 0 && load(false));
    else load(false);
  }

  document.addEventListener('DOMContentLoaded', () => document.querySelectorAll('form[data-picker-form]').forEach(initPicker));
})();
