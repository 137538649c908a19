// What the Temporal UI shows for a dispatch's run, set when the API starts it: a one-line summary
// (the workflow list's column) and Markdown details with the ids and a link to the dashboard.
// Built from the rig's row only (names, repository, ids): nothing here can carry a token.

export interface RigForRun {
  id: string;
  townId: string;
  name: string;
  gitUrl: string;
  repositoryFullName: string | null;
  integration: { provider: 'github' | 'gitlab'; githubAppType: 'standard' | 'lite' | null; accountLogin: string | null } | null;
}

/** `owner/repo` for a provider rig, `host/path` for a manual URL (never credentials or a query). */
export function repository(rig: RigForRun): string {
  if (rig.repositoryFullName) return rig.repositoryFullName;
  try {
    const url = new URL(rig.gitUrl);
    return `${url.host}${url.pathname.replace(/\.git$/, '')}`;
  } catch {
    return 'unknown repository';
  }
}

/** Rig names are an owner's input: in Markdown they stay text, never a link or markup. */
const md = (text: string) => text.replace(/[\\`*_[\]()<>#|!]/g, (c) => `\\${c}`);

function source(rig: RigForRun): string {
  const i = rig.integration;
  if (!i) return 'town token (manual URL)';
  return i.provider === 'github' ? `GitHub ${i.githubAppType ?? 'standard'}` : 'GitLab';
}

/** The run's static summary and details (`workflow.start`'s staticSummary and staticDetails). */
export function runMetadata(rig: RigForRun, dispatchId: string, publicUrl: string): { staticSummary: string; staticDetails: string } {
  const rigPage = `${publicUrl}/rigs/${rig.id}`;
  const i = rig.integration;
  const via = i?.accountLogin ? ` through ${i.provider === 'github' ? 'installation' : 'account'} ${md(i.accountLogin)}` : '';
  return {
    staticSummary: `${rig.name} · ${repository(rig)} · ${source(rig)}`,
    staticDetails: [
      `**Rig** [${md(rig.name)}](${rigPage}): ${md(repository(rig))}, ${source(rig)}${via}`,
      `**Town** \`${rig.townId}\` · **rig** \`${rig.id}\` · **dispatch** \`${dispatchId}\``,
      `[Open the rig in the dashboard](${rigPage})`,
    ].join('  \n'),
  };
}
