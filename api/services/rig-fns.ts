// Pure validation of manual rig input, shared by the API and the dashboard's messages.

/** Why a manual git URL is refused, or null when it is acceptable. */
export function gitUrlProblem(raw: string): string | null {
  // scp-like ssh syntax (git@host:owner/repo.git) is not a URL at all; say what it is.
  if (/^[\w.-]+@[\w.-]+:(?!\/\/)/.test(raw)) return 'must use https:// (ssh remotes like git@host:owner/repo.git are not supported)';
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return 'must be a URL like https://github.com/owner/repo.git';
  }
  if (url.protocol !== 'https:') return 'must use https:// (tokens are sent only over TLS; ssh and http URLs are not supported)';
  if (url.username || url.password) return 'must not contain credentials: store tokens in the town git-auth settings instead';
  // A bare "?" or "#" leaves search/hash empty, so the raw text is checked too.
  if (url.search || url.hash || /[?#]/.test(raw)) return 'must not contain a query or fragment';
  if (!url.hostname || url.pathname.replace(/\/+$/, '').length <= 1) return 'must name a repository path, like https://host/owner/repo.git';
  return null;
}

/** Why a branch name is refused (git check-ref-format rules, simplified), or null. */
export function branchProblem(name: string): string | null {
  if (name.length === 0) return 'must not be empty';
  if (/[\s~^:?*[\\\x00-\x1f\x7f]/.test(name)) return 'must not contain spaces or any of ~ ^ : ? * [ \\';
  if (name.startsWith('-') || name.startsWith('/') || name.endsWith('/') || name.endsWith('.') || name.endsWith('.lock')) {
    return 'is not a valid branch name';
  }
  if (name.includes('..') || name.includes('//') || name.includes('@{') || name === '@') return 'is not a valid branch name';
  return null;
}
