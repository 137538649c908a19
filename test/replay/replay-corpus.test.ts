// Every recorded history of the git-token workflow replays against the workflow code as it is now,
// with the same key arguments, and none of them holds a secret. A change to workflows/ that would
// break a running dispatch fails here (README "Changing the workflow"; new histories with
// `npm run replay:record`).
import { join } from 'node:path';
import { bundleWorkflowCode, DefaultLogger, Runtime, Worker, type WorkflowBundle } from '@temporalio/worker';
import { workflowBundleOptions } from '../../activities/workflow-bundle';
import { loadCorpus, secretsInHistory } from './corpus';
import { fromActivations, fromHistoryEvents } from './key-arguments';

const corpus = loadCorpus();
const runs = corpus.flatMap((f) => f.runs.map((r) => ({ ...r, file: f.file })));
const REQUIRED_PATHS = [
  'github-multi-cycle',
  'pull-refresh-now',
  'gitlab-shared-refresh',
  'gitlab-project-token',
  'town-token',
  'credentials-changed',
  'no-credentials',
  'suspended-resumed',
  'provider-outage',
  'outage-at-start',
  'push-retry',
  'container-gone',
  'container-unreachable',
];

let bundle: WorkflowBundle;
let recordingBundle: WorkflowBundle;

beforeAll(async () => {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  // The bundle the worker runs, and the same code with the command recorder added.
  const options = workflowBundleOptions();
  [bundle, recordingBundle] = await Promise.all([
    bundleWorkflowCode(options),
    bundleWorkflowCode({ ...options, workflowInterceptorModules: [join(__dirname, 'command-recorder.ts')] }),
  ]);
}, 120_000);

it('covers every path of the workflow in the latest recording', () => {
  const latest = corpus.filter((f) => f.file.split('/')[0] === corpus.at(-1)?.file.split('/')[0]).map((f) => f.path);
  expect(latest.sort()).toEqual([...REQUIRED_PATHS].sort());
  expect(runs.length).toBeGreaterThanOrEqual(REQUIRED_PATHS.length + 2); // continue-as-new and shared grants add runs
});

it('replays every recorded history against the current workflow code without nondeterminism', async () => {
  const failures: string[] = [];
  let replayed = 0;
  for await (const r of Worker.runReplayHistories({ workflowBundle: bundle, replayName: 'corpus' }, runs)) {
    replayed++;
    if (r.error) {
      const file = runs.find((x) => x.runId === r.runId)?.file;
      failures.push(`${file} (run ${r.runId}): ${r.error.name}: ${r.error.message}`);
    }
  }
  expect(failures).toEqual([]);
  expect(replayed).toBe(runs.length);
}, 120_000);

it('issues the recorded key arguments on replay: timer durations, activity inputs, search attributes, results', async () => {
  const activations = new Map<string, string[]>();
  const sinks = {
    commandRecorder: {
      activation: {
        fn: (info: { runId: string }, json: string) =>
          void (activations.get(info.runId) ?? activations.set(info.runId, []).get(info.runId)!).push(json),
        callDuringReplay: true,
      },
    },
  };
  for await (const r of Worker.runReplayHistories({ workflowBundle: recordingBundle, replayName: 'corpus-arguments', sinks }, runs)) {
    expect(r.error).toBeUndefined();
  }
  const seen = { timers: 0, activities: 0, searchAttributes: 0, updateResults: 0, continueAsNew: 0, result: 0 };
  for (const run of runs) {
    const recorded = fromHistoryEvents(run.history.events ?? []);
    const replayed = fromActivations(activations.get(run.runId) ?? []);
    // The file name in the message says which history differs.
    expect({ file: run.file, ...replayed }).toEqual({ file: run.file, ...recorded });
    for (const kind of Object.keys(seen) as Array<keyof typeof seen>) seen[kind] += recorded[kind].length;
  }
  // Every kind was compared somewhere in the corpus.
  for (const count of Object.values(seen)) expect(count).toBeGreaterThan(0);
}, 120_000);

it('holds no token or other secret in any history (inputs, results, memos, signals, search attributes, failures)', () => {
  for (const run of runs) {
    expect({ file: run.file, secrets: secretsInHistory(run.history) }).toEqual({ file: run.file, secrets: [] });
  }
});

it('the secret scan finds a token wherever it would sit in a history, and names the place', () => {
  const payload = (value: unknown) => ({ data: Buffer.from(JSON.stringify(value)) });
  const history = {
    events: [
      { eventId: '1', workflowTaskCompletedEventAttributes: { binaryChecksum: 'ab'.repeat(32) } },
      {
        eventId: '2',
        activityTaskCompletedEventAttributes: {
          result: { payloads: [payload({ generation: 2, fingerprint: `sha256:${'c'.repeat(16)}` })] },
        },
      },
    ],
  };
  expect(secretsInHistory(history)).toEqual([]);
  const leaked = structuredClone(history) as typeof history & { events: unknown[] };
  leaked.events.push({ eventId: '3', activityTaskFailedEventAttributes: { failure: { message: `401 for ghs_${'x'.repeat(40)}` } } });
  leaked.events.push({
    eventId: '4',
    markerRecordedEventAttributes: { details: { data: { payloads: [payload({ access_token: 'a' })] } } },
  });
  leaked.events.push({ eventId: '5', workflowExecutionSignaledEventAttributes: { input: { payloads: [payload({ t: 'f'.repeat(64) })] } } });
  expect(secretsInHistory(leaked)).toEqual([
    'events.2.activityTaskFailedEventAttributes.failure.message: value like \\bgh[supor]_[A-Za-z0-9_-]{20,}',
    'events.3.markerRecordedEventAttributes.details.data.payloads.0.data: key "access_token"',
    'events.4.workflowExecutionSignaledEventAttributes.input.payloads.0.data: value like (?<![0-9a-f:])[0-9a-f]{40,}(?![0-9a-f])',
  ]);
});
