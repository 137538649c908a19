// The summary and details the Temporal UI shows for a dispatch's run.
import { repository, runMetadata, type RigForRun } from '../../api/services/run-metadata';

const rig = (over: Partial<RigForRun> = {}): RigForRun => ({
  id: 'rig-1',
  townId: 'town-1',
  name: 'api-server',
  gitUrl: 'https://github.com/acme/api-server.git',
  repositoryFullName: 'acme/api-server',
  integration: { provider: 'github', githubAppType: 'standard', accountLogin: 'acme' },
  ...over,
});

it('summarises rig, repository, provider and app type, and details the ids with a link to the rig page', () => {
  expect(runMetadata(rig(), 'disp-1', 'https://rc.example.com')).toEqual({
    staticSummary: 'api-server · acme/api-server · GitHub standard',
    staticDetails: [
      '**Rig** [api-server](https://rc.example.com/rigs/rig-1): acme/api-server, GitHub standard through installation acme',
      '**Town** `town-1` · **rig** `rig-1` · **dispatch** `disp-1`',
      '[Open the rig in the dashboard](https://rc.example.com/rigs/rig-1)',
    ].join('  \n'),
  });
  expect(
    runMetadata(rig({ integration: { provider: 'github', githubAppType: 'lite', accountLogin: null } }), 'd', 'http://x').staticSummary,
  ).toBe('api-server · acme/api-server · GitHub lite');
  expect(
    runMetadata(rig({ integration: { provider: 'gitlab', githubAppType: null, accountLogin: 'carol' } }), 'd', 'http://x').staticDetails,
  ).toMatch(/GitLab through account carol/);
});

it('names a manual rig by host and path, without a query, and keeps an owner-chosen name plain text in Markdown', () => {
  const manual = rig({
    name: 'evil](javascript:alert(1))',
    gitUrl: 'https://git.example.com/acme/other.git',
    repositoryFullName: null,
    integration: null,
  });
  const m = runMetadata(manual, 'd', 'http://x');
  expect(m.staticSummary).toBe('evil](javascript:alert(1)) · git.example.com/acme/other · town token (manual URL)');
  expect(m.staticDetails).toContain('[evil\\]\\(javascript:alert\\(1\\)\\)](http://x/rigs/rig-1)');
  // The Repository search attribute (the UI list's column): the same name, never the URL's user part.
  expect(repository(manual)).toBe('git.example.com/acme/other');
  expect(repository(rig({ gitUrl: 'https://u:secret@git.example.com/x/y.git?t=1', repositoryFullName: null }))).toBe('git.example.com/x/y');
  expect(repository(rig())).toBe('acme/api-server');
});
