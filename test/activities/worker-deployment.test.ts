// Which build a worker says it is, and how it asks Temporal to route runs between builds.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveBuildId, workerDeploymentOptions } from '../../activities/worker-deployment';
import { workflowSourceHash } from '../../activities/workflow-bundle';

const git = (cwd: string, ...args: string[]) => {
  const r = spawnSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.com', ...args], { cwd, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  return r.stdout.trim();
};

describe('resolveBuildId', () => {
  it('takes TEMPORAL_BUILD_ID (the image sets it from its BUILD_ID build argument) first', () => {
    expect(resolveBuildId('img-42')).toEqual({ buildId: 'img-42', source: 'TEMPORAL_BUILD_ID' });
  });

  it('else the checkout commit, marked with the workflow code hash while workflows/ has uncommitted changes', () => {
    const dir = mkdtempSync(join(tmpdir(), 'rc-build-'));
    mkdirSync(join(dir, 'workflows'));
    writeFileSync(join(dir, 'workflows', 'w.ts'), 'export {};\n');
    git(dir, 'init', '-q');
    git(dir, 'add', '.');
    git(dir, 'commit', '-qm', 'one');
    const head = git(dir, 'rev-parse', 'HEAD');
    expect(resolveBuildId(undefined, dir)).toEqual({ buildId: head, source: 'git' });
    writeFileSync(join(dir, 'workflows', 'w.ts'), 'export const changed = 1;\n');
    expect(resolveBuildId(undefined, dir)).toEqual({ buildId: `${head}+${workflowSourceHash()}`, source: 'git' });
  });

  it('else the hash of the workflow code (an image built without BUILD_ID has no .git)', () => {
    expect(resolveBuildId(undefined, mkdtempSync(join(tmpdir(), 'rc-nogit-')))).toEqual({
      buildId: `workflows-${workflowSourceHash()}`,
      source: 'workflow bundle',
    });
  });
});

it('reports the version always, and routes by version with AUTO_UPGRADE only when versioning is on', () => {
  expect(workerDeploymentOptions({ name: 'rc', versioning: false }, 'b1')).toEqual({
    version: { deploymentName: 'rc', buildId: 'b1' },
    useWorkerVersioning: false,
  });
  expect(workerDeploymentOptions({ name: 'rc', versioning: true }, 'b1')).toEqual({
    version: { deploymentName: 'rc', buildId: 'b1' },
    useWorkerVersioning: true,
    defaultVersioningBehavior: 'AUTO_UPGRADE',
  });
});
