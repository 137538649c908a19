// Shared browser behaviour of the dashboard. Forms marked data-api="METHOD /path" are sent to the
// JSON API (same origin, session cookie); the API's errors are shown next to the field they name.
// Text from the server is only ever set with textContent, never parsed as HTML.
'use strict';

(function () {
  /** Calls the JSON API; resolves to {ok, status, data}. */
  async function api(method, url, body) {
    const init = { method, credentials: 'same-origin', headers: { accept: 'application/json' } };
    if (body !== undefined) {
      init.headers['content-type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(url, init);
    } catch (err) {
      return {
        ok: false,
        status: 0,
        data: { error: { code: 'network_error', message: 'The service could not be reached: ' + err.message } },
      };
    }
    const text = await res.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch (_) {
      data = { error: { code: 'bad_response', message: 'Unexpected answer (' + res.status + ')' } };
    }
    if (res.status === 401) window.location.assign('/login?next=' + encodeURIComponent(location.pathname + location.search));
    return { ok: res.ok, status: res.status, data };
  }

  /**
   * Form fields as JSON: dotted names nest ("tokens.0.host"), empty values and empty rows are left out.
   * A radio counts only when chosen; a checkbox sends its value when ticked, else its data-unchecked.
   */
  function serialize(form) {
    const out = {};
    for (const el of form.elements) {
      if (!el.name || el.disabled || el.type === 'submit' || el.type === 'button') continue;
      if (el.type === 'radio' && !el.checked) continue;
      const value = (el.type === 'checkbox' && !el.checked ? el.dataset.unchecked || '' : el.value).trim();
      if (value === '') continue;
      const path = el.name.split('.');
      let node = out;
      path.forEach((key, i) => {
        if (i === path.length - 1) node[key] = value;
        else node = node[key] = node[key] || (/^\d+$/.test(path[i + 1]) ? [] : {});
      });
    }
    // Empty rows are left out, so the API numbers the rows sent: remember which row each one was,
    // for its errors (showError) to land next to that row.
    const rows = {};
    for (const key of Object.keys(out)) {
      if (!Array.isArray(out[key])) continue;
      rows[key] = [];
      out[key].forEach((v, i) => v && rows[key].push(i));
      out[key] = out[key].filter(Boolean);
    }
    form.sentRows = rows;
    return out;
  }

  /** The form's name of an API error's field: `tokens.0.host` of the rows sent is the row on screen. */
  function fieldOnForm(form, field) {
    const m = /^([^.]+)\.(\d+)(\..*)?$/.exec(field || '');
    const rows = m && form.sentRows && form.sentRows[m[1]];
    if (!rows || rows[Number(m[2])] === undefined) return field;
    return m[1] + '.' + rows[Number(m[2])] + (m[3] || '');
  }

  function clearErrors(form) {
    form.querySelectorAll('[data-error-for], [data-form-error]').forEach((el) => (el.textContent = ''));
    form.querySelectorAll('[aria-invalid="true"]').forEach((el) => el.removeAttribute('aria-invalid'));
  }

  /** Shows an API error next to its field (error.field), else at the form's foot. */
  function showError(form, error) {
    const field = fieldOnForm(form, error && error.field);
    const slot = field ? form.querySelector('[data-error-for="' + CSS.escape(field) + '"]') : null;
    const text = slot ? error.message : (error && error.code ? error.code + ': ' : '') + ((error && error.message) || 'Request failed');
    const target = slot || form.querySelector('[data-form-error]');
    if (!target) return window.alert(text);
    target.textContent = text;
    const input = field ? form.querySelector('[name="' + CSS.escape(field) + '"]') : null;
    if (input && input.type !== 'hidden') {
      // Screen readers announce the message with the field: link it by id, keeping any hint.
      if (!slot.id) slot.id = 'err-' + Math.random().toString(36).slice(2);
      const described = (input.getAttribute('aria-describedby') || '').split(' ').filter(Boolean);
      if (!described.includes(slot.id)) input.setAttribute('aria-describedby', described.concat(slot.id).join(' '));
      input.setAttribute('aria-invalid', 'true');
      input.focus();
    }
  }

  async function submitApiForm(form, event) {
    event.preventDefault();
    if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) return;
    clearErrors(form);
    const check = form.dispatchEvent(new CustomEvent('rc:before-submit', { cancelable: true }));
    if (!check) return;
    const [method, ...rest] = form.dataset.api.split(' ');
    const url = rest.join(' ');
    const body = method === 'GET' ? undefined : Object.assign({}, form.dataset.body ? JSON.parse(form.dataset.body) : {}, serialize(form));
    const buttons = form.querySelectorAll('button[type="submit"]');
    buttons.forEach((b) => {
      b.disabled = true;
      b.setAttribute('aria-busy', 'true');
    });
    const res = await api(method, url, body);
    buttons.forEach((b) => {
      b.disabled = false;
      b.removeAttribute('aria-busy');
    });
    if (!res.ok) return showError(form, res.data && res.data.error);
    if (form.dataset.reveal) {
      // A secret shown once (a new API token): displayed in place, never put in the URL or storage.
      const box = form.querySelector('[data-revealed]');
      box.querySelector('[data-revealed-value]').textContent = res.data[form.dataset.reveal];
      box.hidden = false;
      form.querySelectorAll('input').forEach((input) => (input.value = ''));
      return;
    }
    if (form.dataset.redirect) {
      window.location.assign(form.dataset.redirect.replace(/\{(\w+)\}/g, (_, k) => encodeURIComponent(res.data[k])));
    } else {
      window.location.reload();
    }
  }

  /** ARIA tabs: click or arrow keys switch panels. */
  function initTabs(list) {
    const tabs = Array.from(list.querySelectorAll('[role="tab"]'));
    const select = (tab) => {
      tabs.forEach((t) => {
        const on = t === tab;
        t.setAttribute('aria-selected', String(on));
        t.tabIndex = on ? 0 : -1;
        document.getElementById(t.getAttribute('aria-controls')).hidden = !on;
      });
    };
    tabs.forEach((tab, i) => {
      tab.addEventListener('click', () => select(tab));
      tab.addEventListener('keydown', (e) => {
        const next =
          e.key === 'ArrowRight' ? i + 1 : e.key === 'ArrowLeft' ? i - 1 : e.key === 'Home' ? 0 : e.key === 'End' ? tabs.length - 1 : null;
        if (next === null) return;
        e.preventDefault();
        const t = tabs[(next + tabs.length) % tabs.length];
        select(t);
        t.focus();
      });
    });
  }

  /** "Add host" on the town tokens form: copies the row template with the next index. */
  function initRows(form) {
    const rows = form.querySelector('[data-rows]');
    const template = form.querySelector('template[data-row-template]');
    form.querySelector('[data-add-row]').addEventListener('click', () => {
      const n = rows.querySelectorAll('.token-row').length;
      const holder = document.createElement('div');
      holder.innerHTML = template.innerHTML.replace(/__N__/g, String(n)).replace(/__L__/g, String(n + 1));
      const row = holder.firstElementChild;
      rows.appendChild(row);
      row.querySelector('input').focus();
    });
  }

  document.addEventListener('DOMContentLoaded', () => {
    document.querySelectorAll('form[data-api]').forEach((form) => form.addEventListener('submit', (e) => submitApiForm(form, e)));
    document.querySelectorAll('[role="tablist"]').forEach(initTabs);
    document.querySelectorAll('form[data-token-form]').forEach(initRows);
  });

  window.RC = { api, showError, clearErrors };
})();
