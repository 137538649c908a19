// Pure rules of a rig's GitLab project access token: which date to ask for, until when to use a
// token, its name at GitLab, when to ask again after a refusal, and the words for a refusal.
import type { ProjectTokenRefusal, RepoAccess } from './providers/types';

/** Enough for git clone, fetch and push (`read_repository`: clone and fetch); nothing of the API. */
export function projectTokenScopes(access: RepoAccess): string[] {
  return access === 'read' ? ['read_repository'] : ['write_repository'];
}
/** Developer: pushes to unprotected branches, administers nothing. */
export const PROJECT_TOKEN_ACCESS_LEVEL = 30;

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
/**
 * GitLab ends a token when its `expires_at` date starts in the server's time zone (GitLab.com runs
 * on UTC; a self-managed server may not), and the furthest ahead of UTC a zone goes is UTC+14.
 */
const EARLIEST_ZONE_MS = 14 * HOUR_MS;
/** The furthest behind UTC a zone goes (UTC-12): after the date starts there, no server accepts the token. */
const LATEST_ZONE_MS = 12 * HOUR_MS;
/** Kept between the last moment a token is used and its worst-case end, for a failing rotation's retries. */
const SAFETY_MS = 2 * HOUR_MS;

/** The `expires_at` to ask GitLab for: the UTC date two days ahead, so a token lives at least 10 h anywhere. */
export function expiryDate(nowMs: number): string {
  return new Date(nowMs + 2 * DAY_MS).toISOString().slice(0, 10);
}

/** The earliest moment a token dated `expiresOn` may stop working: that date's start at UTC+14. */
export function worstCaseEnd(expiresOn: string): number {
  return Date.parse(`${expiresOn}T00:00:00Z`) - EARLIEST_ZONE_MS;
}

/** The moment a token dated `expiresOn` has surely stopped working, whatever the server's zone. */
export function latestEnd(expiresOn: string): number {
  return Date.parse(`${expiresOn}T00:00:00Z`) + LATEST_ZONE_MS;
}

/**
 * Until when dispatches use a token issued at `issuedMs`: two hours before its worst-case end, and
 * no later than `rotateSeconds` after it was issued. Dispatches see this as the token's expiry, so
 * they refresh (and one of them rotates) shortly before it.
 */
export function usableUntil(expiresOn: string, issuedMs: number, rotateSeconds: number): Date {
  return new Date(Math.min(worstCaseEnd(expiresOn) - SAFETY_MS, issuedMs + rotateSeconds * 1000));
}

/** The part of a token's name that ties it to its rig: finds tokens whose creation answer was lost. */
export const rigMarker = (rigId: string) => `[rig ${rigId}]`;

/** The token's name at GitLab, where a project's maintainers see it. */
export function tokenName(rigName: string, rigId: string): string {
  return `repo-connect rig ${rigName.slice(0, 100)} ${rigMarker(rigId)}`;
}

/** Whether a refused rig may ask GitLab again: `retrySeconds` after the last try (never tried: at once). */
export function retryDue(lastTriedAt: Date | null, nowMs: number, retrySeconds: number): boolean {
  return lastTriedAt === null || nowMs - lastTriedAt.getTime() >= retrySeconds * 1000;
}

const REFUSAL_WORDS: Record<ProjectTokenRefusal, string> = {
  insufficient_scope: 'the GitLab grant lacks the api scope (connected before the service asked for it): reconnect GitLab',
  forbidden:
    'GitLab refused a project access token: the connected account needs the Maintainer or Owner role on the project, and GitLab.com a Premium or Ultimate plan',
  not_available: 'project access tokens are switched off on this GitLab, or the project is gone',
  refused: 'GitLab refused a project access token',
  token_gone: 'the project access token is gone at GitLab',
};

/** The sentence a dispatch shows for an account-wide fallback, with what GitLab said. */
export function fallbackReason(reason: ProjectTokenRefusal, said: string): string {
  const words = REFUSAL_WORDS[reason];
  return reason === 'refused' ? `${words} (${said})` : words;
}
