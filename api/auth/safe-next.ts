// Where a sign-in may send the browser afterwards: only a path on this site (no open redirects).

/** `next` when it is a path on this site, else "/". */
export function safeNext(next: unknown): string {
  if (typeof next !== 'string' || !next.startsWith('/') || next.startsWith('//') || next.startsWith('/\\')) return '/';
  try {
    const url = new URL(next, 'http://local.invalid');
    return url.origin === 'http://local.invalid' ? `${url.pathname}${url.search}` : '/';
  } catch {
    return '/';
  }
}
