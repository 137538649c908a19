// Where a sign-in may send the browser afterwards: only a path on this site (no open redirects).

/** `next` when it is a path on this site, else "/". Checked after the URL parser normalised it, since `/.//host` becomes `//host`. */
export function safeNext(next: unknown): string {
  if (typeof next !== 'string' || !next.startsWith('/') || next.startsWith('//') || next.startsWith('/\\')) return '/';
  try {
    const url = new URL(next, 'http://local.invalid');
    const path = `${url.pathname}${url.search}`;
    // A path that starts with two slashes (or a backslash after one) is a protocol-relative URL to a browser.
    return url.origin === 'http://local.invalid' && !/^\/[/\\]/.test(path) ? path : '/';
  } catch {
    return '/';
  }
}
