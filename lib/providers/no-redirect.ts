// Provider calls never follow redirects: fetch re-sends a 307/308 with its body, which for a token
// grant holds the OAuth client secret and the refresh token, and any redirect could carry an
// Authorization header's purpose to a host nobody configured. A 3xx is its own failure instead.
import { ProviderError } from './types';

/** A provider answered a redirect, which was not followed. */
export class RedirectRefusedError extends Error {
  constructor(
    readonly status: number,
    /** The origin the redirect pointed at (never its path or query, which may hold a code). */
    readonly target: string,
  ) {
    super(`answered ${status}, a redirect to ${target}, which is not followed`);
    this.name = 'RedirectRefusedError';
  }
}

function originOf(location: string | null, requestUrl: string): string {
  if (!location) return 'nowhere (no Location header)';
  try {
    return new URL(location, requestUrl).origin;
  } catch {
    return 'an unparseable Location';
  }
}

/** `fetch` with `redirect: 'manual'` that rejects any 3xx but 304 with RedirectRefusedError. */
export function noRedirectFetch(base: typeof fetch = fetch): typeof fetch {
  return async (input, init) => {
    const res = await base(input, { ...init, redirect: 'manual' });
    if (res.status >= 300 && res.status < 400 && res.status !== 304) {
      await res.body?.cancel().catch(() => undefined);
      const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
      throw new RedirectRefusedError(res.status, originOf(res.headers.get('location'), url));
    }
    return res;
  };
}

/** The refused redirect behind `err` (itself, or the cause octokit wraps it in), if any. */
export function refusedRedirect(err: unknown): RedirectRefusedError | undefined {
  if (err instanceof RedirectRefusedError) return err;
  const cause = (err as { cause?: unknown } | null)?.cause;
  return cause instanceof RedirectRefusedError ? cause : undefined;
}

/** The ProviderError a refused redirect becomes: retryable like any provider fault, and saying what happened. */
export function redirectFailure(
  provider: 'GitHub' | 'GitLab',
  redirect: RedirectRefusedError,
  action: string,
  hint: string,
): ProviderError {
  return new ProviderError('provider_unavailable', `${provider} ${redirect.message} while ${action} (${hint})`, redirect.status);
}
