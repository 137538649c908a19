// Base URLs of self-hosted services (GitLab) as one canonical string, so an allow-list compares
// what a URL means rather than how it was typed: scheme and host lower-cased, default port
// dropped, path without a trailing slash. And the query-or-fragment rule of the URLs people enter.

/** The canonical form of an http(s) base URL; throws with the reason when it is not one. */
export function normaliseBaseUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw.trim());
  } catch {
    throw new Error('must be a URL');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new Error('must be an http(s) URL');
  if (url.username || url.password || url.search || url.hash) throw new Error('must not contain credentials, a query or a fragment');
  // URL lower-cases the scheme and host and drops a default port; the path keeps its case.
  return `${url.protocol}//${url.host}${url.pathname.replace(/\/+$/, '')}`;
}

/** Whether `raw` (parsed as `url`) has a query or fragment: a bare "?" or "#" leaves search and hash empty, so the text is read too. */
export function hasQueryOrFragment(raw: string, url: URL): boolean {
  return url.search !== '' || url.hash !== '' || /[?#]/.test(raw);
}
