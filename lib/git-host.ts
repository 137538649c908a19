// The git host of a repository URL: the key a town's static tokens are stored under, shared by the
// credential resolver (activities) and the rig views (api).

/** The git host of a rig's URL (lowercase, with a non-default port), used to pick a town token. */
export function gitHost(gitUrl: string): string {
  return new URL(gitUrl).host.toLowerCase();
}
