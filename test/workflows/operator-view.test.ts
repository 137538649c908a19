// What an operator sees of a dispatch in the Temporal UI: the run's static summary and details (set
// by the API at start), its current details (kept up to date by the workflow), and a summary on each
// timer and activity. None of them may hold a token.
import type { temporal } from '@temporalio/proto';
import { FakeContainerHost } from '../fakes/container';
import { eventually, startHarness, type Harness } from '../helpers/harness';
import { allText, dispatchTo, githubRig, githubWorld, registerGithubAgain, runsOf, type GithubWorld } from '../helpers/scenario';

let world: GithubWorld;
let containers: FakeContainerHost;
let h: Harness;

beforeAll(async () => {
  world = await githubWorld({ tokenLifetimeSeconds: 8 });
  containers = await FakeContainerHost.start();
  h = await startHarness({
    env: { ...world.env, TOKEN_REFRESH_MARGIN_SECONDS: '3', REFRESH_JITTER_MAX_SECONDS: '0.5', PUBLIC_URL: 'https://rc.example.com' },
    workflowDefaults: { recheckSeconds: 60 },
  });
});

afterAll(async () => {
  await h?.close();
  await containers?.close();
  await world?.gh.close();
});

const text = (p: temporal.api.common.v1.IPayload | null | undefined) => (p?.data ? JSON.parse(Buffer.from(p.data).toString()) : undefined);

it('shows rig, repository and provider from the start, follows status and generation, names every wait and activity, and holds no token', async () => {
  const rig = await githubRig(h, world, { repos: 2 });
  const d = await dispatchTo(h, containers, rig.rigId, 'operator-view');
  await containers.waitForPush(d.container, (p) => p.generation === 2, 20_000);
  const handle = h.core.temporal.workflow.getHandle(d.workflowId);

  // The summary and details are the first run's: 8 s tokens wait on the hot task queue, and Temporal
  // carries no user metadata over the continue-as-new that took the run there.
  const [first, ...continued] = await runsOf(h, d.workflowId);
  expect(continued.length).toBeGreaterThan(0);
  const described = await h.core.temporal.workflow.getHandle(d.workflowId, first.runId).describe();
  expect(await described.staticSummary()).toBe(`${rig.repo.name} · ${rig.repo.full_name} · GitHub standard`);
  expect(await (await handle.describe()).staticSummary()).toBeUndefined();
  const details = (await described.staticDetails())!;
  for (const id of [rig.townId, rig.rigId, d.dispatchId]) expect(details).toContain(`\`${id}\``);
  expect(details).toContain(`(https://rc.example.com/rigs/${rig.rigId})`);

  const current = async () => (await handle.query<temporal.api.sdk.v1.IWorkflowMetadata>('__temporal_workflow_metadata')).currentDetails!;
  expect(await current()).toMatch(/^\*\*active\*\* · generation [23] · integration {2}\ntoken expires \d{4}-\d\d-\d\dT/);

  world.gh.suspend(rig.installationId);
  await registerGithubAgain(h, rig);
  const failed = await eventually(
    async () => ((await current()).startsWith('**credential_error**') ? current() : null),
    20_000,
    'credential_error',
  );
  expect(failed).toMatch(/last error `installation_suspended` at /);

  await h.call('POST', `/api/dispatches/${d.dispatchId}/stop`);
  await handle.result();
  const histories = (await runsOf(h, d.workflowId)).map((run) => run.history);
  const summaries = histories.flatMap((history) =>
    (history.events ?? []).map((e) => text(e.userMetadata?.summary)).filter((s): s is string => !!s),
  );
  expect(summaries).toEqual(
    expect.arrayContaining([
      `${rig.repo.name} · ${rig.repo.full_name} · GitHub standard`, // the first run's, on its first event
      'mint generation 1',
      'refresh generation 2',
      expect.stringMatching(/^wait until \d\d:\d\d:\d\dZ \(refresh\)$/),
      expect.stringMatching(/^refresh generation [34] \(changed\)$/), // the suspension
      'revoke and end (stopped)',
    ]),
  );

  // No token, nor the container's own, in anything the operator can see.
  const seen = [await described.staticSummary(), details, failed, ...summaries, ...allText(histories)].join('\n');
  const secrets = [...world.gh.issuedTokens(), d.containerToken];
  expect(secrets.length).toBeGreaterThan(3);
  expect(secrets.filter((t) => seen.includes(t))).toEqual([]);
}, 90_000);
