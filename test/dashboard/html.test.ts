// Escaping by construction, the login redirect's open-redirect guard, and words that describe a
// token's reach (pure, no I/O).
import { html, jsonScript } from '../../api/dashboard/html';
import { scopeWords } from '../../api/dashboard/labels';
import { safeNext } from '../../api/auth/safe-next';

it('escapes interpolations and nests trusted fragments as they are', () => {
  const name = `<script>alert("x")</script>&'`;
  const out = html`<p title="${name}">${name} ${html`<b>${name}</b>`} ${[1, null, false, undefined, 'a']}</p>`.value;
  expect(out).toBe(
    '<p title="&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;">&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39; ' +
      '<b>&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;</b> 1a</p>',
  );
});

it('embeds page data that cannot close its script element', () => {
  const out = jsonScript('data', { name: '</script><script>alert(1)</script>' }).value;
  expect(out).not.toContain('</script><script>');
  expect(JSON.parse(out.replace(/^<script[^>]*>/, '').replace(/<\/script>$/, ''))).toEqual({ name: '</script><script>alert(1)</script>' });
});

it.each([
  ['/towns/1?x=2', '/towns/1?x=2'],
  ['//evil.example', '/'],
  ['/\\evil.example', '/'],
  ['/.//evil.example/', '/'],
  ['/./\\evil.example/', '/'],
  ['/a/..//evil.example', '/'],
  ['/\t/evil.example', '/'],
  ['/%2F%2Fevil.example', '/%2F%2Fevil.example'],
  ['https://evil.example/', '/'],
  ['towns', '/'],
  [undefined, '/'],
])('keeps next=%s on this site (%s)', (next, expected) => {
  expect(safeNext(next)).toBe(expected);
});

it('describes a GitLab project token with the scope the access of its rig gives it', () => {
  const state = { usable_until: '2030-01-01T00:00:00.000Z', rotated_at: null };
  expect(scopeWords('repository', null, state, 'read')).toContain('(Developer, read_repository)');
  expect(scopeWords('repository', null, state, 'write')).toContain('(Developer, write_repository)');
});
