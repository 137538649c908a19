// A credentialsChanged signal that arrives while the run that just minted continues as new (onto the
// hot task queue, as every dispatch whose next refresh is closer than WORKER_SLEEPING_AFTER_SECONDS does
// after its first token; the threshold is raised here so that an hour-long token's wait counts): the server
// refuses that workflow task, the run starts over with the signal first, and its mint returns the lease
// the first attempt stored. The change must still lead to a new mint, within seconds, not at the refresh
// an hour later.
import { FakeContainerHost } from '../fakes/container';
import { startHarness, type Harness } from '../helpers/harness';
import { githubRig, githubWorld, runsOf, type GithubWorld } from '../helpers/scenario';
import { credentialsChangedSignal } from '../../workflows/git-token-workflow';

let world: GithubWorld;
let h: Harness;
let containers: FakeContainerHost;

beforeAll(async () => {
  world = await githubWorld({ tokenLifetimeSeconds: 3600 });
  containers = await FakeContainerHost.start();
  h = await startHarness({ env: { ...world.env, WORKER_SLEEPING_AFTER_SECONDS: '86400' } });
});

afterAll(async () => {
  await h?.close();
  await containers?.close();
  await world?.gh.close();
});

it('mints again when the change came while the first mint was still pushing and its run continued as new', async () => {
  const rig = await githubRig(h, world, { repos: 1 });
  // The container answers the first push after 2 s: the mint (which pushes) is still running when the signal comes.
  const url = containers.add('signal-during-can');
  containers.setDelay('signal-during-can', 2000);
  const d = await h.call<{ dispatch_id: string; workflow_id: string; container_token: string }>(
    'POST',
    `/api/rigs/${rig.rigId}/dispatches`,
    {
      container_url: url,
    },
  );
  containers.setBearer('signal-during-can', d.body.container_token);
  await containers.waitForPush('signal-during-can', (p) => p.generation === 1, 20_000);
  await h.core.temporal.workflow.getHandle(d.body.workflow_id).signal(credentialsChangedSignal, { reason: 'test: changed mid-mint' });
  containers.setDelay('signal-during-can', 0);

  const second = await containers.waitForPush('signal-during-can', (p) => p.generation === 2, 20_000);
  expect(second.token).not.toBe(containers.pushes('signal-during-can')[0].token);
  // The task the server refused is in the history: this test exercised the path it names.
  const failed: string[] = [];
  for (const run of await runsOf(h, d.body.workflow_id))
    for (const e of run.history.events ?? [])
      if (e.workflowTaskFailedEventAttributes) failed.push(String(e.workflowTaskFailedEventAttributes.cause));
  expect(failed).toContain('1'); // WORKFLOW_TASK_FAILED_CAUSE_UNHANDLED_COMMAND
  await h.call('POST', `/api/dispatches/${d.body.dispatch_id}/stop`);
}, 60_000);
