// Failure `type` strings shared by activities (which throw them), workflows (which branch on them)
// and the API (which maps them to HTTP codes). Pure constants: safe inside the workflow sandbox.

export const FailureType = {
  installationSuspended: 'installation_suspended',
  installationNotFound: 'installation_not_found',
  repositoryNotAccessible: 'repository_not_accessible',
  reconnectRequired: 'reconnect_required',
  providerUnavailable: 'provider_unavailable',
  noCredentials: 'no_credentials',
  /** The container answered 404/410 to a push: it is gone, so the dispatch ends. */
  containerGone: 'container_gone',
} as const;

export type FailureCode = (typeof FailureType)[keyof typeof FailureType];

/** Failures that retrying cannot fix: a person has to change the integration, rig or town. */
export const PERMANENT_FAILURES: readonly string[] = [
  FailureType.installationSuspended,
  FailureType.installationNotFound,
  FailureType.repositoryNotAccessible,
  FailureType.reconnectRequired,
  FailureType.noCredentials,
];

/** True when `code` names a failure that needs a person, not a retry. */
export function isPermanentFailure(code: string | undefined | null): boolean {
  return code != null && PERMANENT_FAILURES.includes(code);
}
