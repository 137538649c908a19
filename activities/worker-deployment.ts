// Worker Versioning: which deployment version a worker is, and how runs move between versions.
//
// The git-token workflow is AUTO_UPGRADE: a running dispatch moves to the deployment's current
// version at its next workflow task. A run lives for hours to days (100 refresh cycles before it
// continues-as-new: about four days with GitHub's one-hour tokens), and PINNED would keep every run
// on the build it started on until then, so each old build's workers would have to stay up that
// long, and a pinned run whose build's workers are gone stops refreshing: its container's token
// expires. With AUTO_UPGRADE every deploy must replay every running history instead, which is what
// the replay corpus guards (test/replay/, README "Changing the workflow").
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { WorkerDeploymentOptions } from '@temporalio/worker';
import type { Config } from '../lib/config';
import { workflowSourceHash } from './workflow-bundle';

const ROOT = resolve(__dirname, '..');

export type BuildIdSource = 'TEMPORAL_BUILD_ID' | 'git' | 'workflow bundle';

/**
 * The build id: TEMPORAL_BUILD_ID (the image sets it from its BUILD_ID build argument), else the
 * checkout's git commit (with the workflow code's hash when workflows/ has uncommitted changes),
 * else the hash of the workflow code.
 */
export function resolveBuildId(configured: string | undefined, root = ROOT): { buildId: string; source: BuildIdSource } {
  if (configured) return { buildId: configured, source: 'TEMPORAL_BUILD_ID' };
  if (existsSync(join(root, '.git'))) {
    const git = (...args: string[]) => spawnSync('git', args, { cwd: root, encoding: 'utf8' });
    const head = git('rev-parse', 'HEAD');
    if (head.status === 0 && /^[0-9a-f]{40}$/.test(head.stdout.trim())) {
      const dirty = git('status', '--porcelain', '--', 'workflows').stdout.trim() !== '';
      return { buildId: `${head.stdout.trim()}${dirty ? `+${workflowSourceHash()}` : ''}`, source: 'git' };
    }
  }
  return { buildId: `workflows-${workflowSourceHash()}`, source: 'workflow bundle' };
}

/** The worker's deployment options: always its version (the UI shows which build ran each task), versioned routing when enabled. */
export function workerDeploymentOptions(deployment: Config['temporal']['deployment'], buildId: string): WorkerDeploymentOptions {
  const version = { deploymentName: deployment.name, buildId };
  return deployment.versioning
    ? { version, useWorkerVersioning: true, defaultVersioningBehavior: 'AUTO_UPGRADE' }
    : { version, useWorkerVersioning: false };
}

type DeploymentService = Pick<
  import('@temporalio/client').Connection['workflowService'],
  'describeWorkerDeployment' | 'setWorkerDeploymentCurrentVersion'
>;

/**
 * The first versioned deploy: a deployment without a current version routes new runs to unversioned
 * workers, and there are none, so nothing would run. When the deployment has no current version yet,
 * this build becomes it. Later builds wait for an operator (`set-current-version`), which is the
 * point of versioning. Retries until the server has seen this build's pollers (it refuses before).
 */
export async function adoptDeploymentIfUnset(opts: {
  service: DeploymentService;
  namespace: string;
  deploymentName: string;
  buildId: string;
  timeoutMs?: number;
}): Promise<'adopted' | 'already_set'> {
  const { service, namespace, deploymentName, buildId } = opts;
  const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
  for (;;) {
    try {
      const d = await service.describeWorkerDeployment({ namespace, deploymentName });
      const routing = d.workerDeploymentInfo?.routingConfig;
      // Unset means never set: routing to unversioned workers is also what an operator chooses to
      // turn versioning off or roll back from it, and then the change has a time.
      const changedAt = routing?.currentVersionChangedTime?.seconds; // int64: a number, a Long or a string
      const chosen = changedAt !== undefined && changedAt !== null && String(changedAt) !== '0';
      if (routing?.currentDeploymentVersion?.buildId || (routing?.currentVersion && routing.currentVersion !== '__unversioned__') || chosen)
        return 'already_set';
      await service.setWorkerDeploymentCurrentVersion({
        namespace,
        deploymentName,
        buildId,
        conflictToken: d.conflictToken,
        identity: `repo-connect ${buildId}`,
      });
      return 'adopted';
    } catch (err) {
      // NOT_FOUND until the first poll registers the deployment; FAILED_PRECONDITION until pollers are seen.
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}
