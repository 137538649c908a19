// Pure rules of rigs: validation of manual input (shared by the API and the dashboard's messages)
// and how far the rig's tokens reach.
import { hasQueryOrFragment } from '../../lib/base-url';

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
  if (hasQueryOrFragment(raw, url)) return 'must not contain a query or fragment';
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

/**
 * How far a rig's tokens reach. GitHub tokens are scoped to the repository, town tokens are
 * static; a GitLab rig reaches its project alone while it holds a project token, the whole account
 * where GitLab refused one, and is undecided (null) until its first dispatch asks.
 */
export function rigScope(
  provider: 'github' | 'gitlab' | null,
  source: 'integration' | 'town_git_auth' | 'none',
  projectToken: { status: string; fallbackReason: string | null } | null,
): { credential_scope: 'repository' | 'account' | 'static' | null; credential_scope_reason: string | null } {
  if (source === 'town_git_auth') return { credential_scope: 'static', credential_scope_reason: null };
  if (provider === 'github') return { credential_scope: 'repository', credential_scope_reason: null };
  if (provider === 'gitlab' && projectToken?.status === 'active') return { credential_scope: 'repository', credential_scope_reason: null };
  if (provider === 'gitlab' && projectToken?.status === 'fallback') {
    return { credential_scope: 'account', credential_scope_reason: projectToken.fallbackReason };
  }
  return { credential_scope: null, credential_scope_reason: null };
}

/**
 * The access a rig gets: what was asked, else what it had (`write` for a new rig). A lite GitHub
 * installation only reads, so its rigs are `read` and an explicit `write` is refused (a problem
 * for the `access` field) rather than quietly narrowed.
 */
export function decideAccess(
  asked: 'read' | 'write' | undefined,
  readOnlyIntegration: boolean,
  current: 'read' | 'write',
): { access: 'read' | 'write' } | { problem: string } {
  if (!readOnlyIntegration) return { access: asked ?? current };
  if (asked === 'write') {
    return {
      problem:
        'cannot be write on a lite (read-only) GitHub App installation: connect the rig through the standard app for agents that push',
    };
  }
  return { access: 'read' };
}
