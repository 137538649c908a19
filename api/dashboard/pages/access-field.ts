// The "Agents may push" checkbox of the create-rig form and the rig page. Checked sends
// `access: "write"`, unchecked `"read"` (dashboard.js reads `data-unchecked`); a disabled box (a lite
// GitHub installation, read-only whatever is asked) sends nothing, so the API's default applies.
import { html, type SafeHtml } from '../html';

/** What each access lets agents do, in the words the pages use. */
export const ACCESS_WORDS: Record<'read' | 'write', string> = {
  write: 'clone and push',
  read: 'clone and fetch only (read-only tokens)',
};

/** Where the rig's tokens come from decides what the box can narrow; said under it. */
export function accessHint(kind: 'github' | 'github_lite' | 'gitlab' | 'town' | 'picker'): string {
  switch (kind) {
    case 'github':
      return 'Unticked, GitHub tokens get contents: read, so git push is refused.';
    case 'github_lite':
      return 'A lite (read-only) GitHub installation only reads: connect the rig through the read/write app to let agents push.';
    case 'gitlab':
      return "Unticked, the rig's GitLab project token gets read_repository instead of write_repository. Changing it revokes the token; running agents get one with the new scope within seconds. Where GitLab refuses project tokens the account-wide grant stands in, and it cannot be narrowed.";
    case 'town':
      return 'Takes effect once the rig is connected to an integration: a town token is used as it is.';
    case 'picker':
      return 'Unticked, agents get tokens that clone and fetch but cannot push (GitHub contents: read, GitLab read_repository). Always unticked for a lite (read-only) GitHub installation.';
  }
}

/** The checkbox, its hint and the slot for the API's `access` error; `idPrefix` keeps ids unique on the page. */
export function accessField(idPrefix: string, opts: { push: boolean; disabled?: boolean; hint: string }): SafeHtml {
  return html`<div class="check" data-access-field>
  <input type="checkbox" id="${idPrefix}-access" name="access" value="write" data-unchecked="read" ${opts.push ? html`checked` : ''} ${opts.disabled ? html`disabled` : ''} aria-describedby="${idPrefix}-access-hint">
  <label for="${idPrefix}-access">Agents may push</label>
</div>
<p class="hint" id="${idPrefix}-access-hint" data-access-hint>${opts.hint}</p>
<p class="field-error" data-error-for="access" role="alert"></p>`;
}
