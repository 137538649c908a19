// The V8 settings of lib/process-tuning.ts, each in a process of its own since V8 flags are
// process-wide. The workflow threads' semi-space cap (tuneWorkerHeaps): a thread started after the
// cap has the small young generation, the main isolate keeps the one it grew. The API's pretenuring
// switch (tuneApiHeap): a site whose objects survived in bulk still allocates young.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

const ROOT = join(__dirname, '..', '..');

/** Runs an ES module script (tsx, from the project root) in a fresh Node process; returns the JSON of its last output line. */
function inFreshProcess<T>(script: string, nodeArgs: string[] = []): T {
  const out = execFileSync(process.execPath, [...nodeArgs, '--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: ROOT,
    encoding: 'utf8',
  });
  return JSON.parse(out.trim().split('\n').pop()!) as T;
}

/** New-space sizes (MB) after the same allocation churn: the main isolate's, then a thread's started after the cap. */
function newSpaceAfterCap(megabytes: number): { main: number; thread: number } {
  const script = `
    import { Worker } from 'node:worker_threads';
    import { getHeapSpaceStatistics } from 'node:v8';
    import tuning from './lib/process-tuning.ts'; // CommonJS: its exports are the default
    const churn = \`(stats) => {
      const keep = [];
      for (let r = 0; r < 150; r++) {
        keep.push(Array.from({ length: 20000 }, (_, i) => ({ i, s: 'x' + i })));
        if (keep.length > 20) keep.shift();
      }
      return stats().find((s) => s.space_name === 'new_space').space_size / 1048576;
    }\`;
    const main = eval(churn)(getHeapSpaceStatistics);
    tuning.tuneWorkerHeaps({ heapGrowthPercent: 0, workflowSemiSpaceMb: ${megabytes} });
    const w = new Worker(\`require('node:worker_threads').parentPort.postMessage((\${churn})(require('node:v8').getHeapSpaceStatistics))\`, { eval: true, execArgv: [] });
    w.once('message', (thread) => { console.log(JSON.stringify({ main, thread })); w.terminate(); });
  `;
  return inFreshProcess(script);
}

describe("tuneWorkerHeaps: the workflow threads' semi-space", () => {
  it('gives threads started after it a young generation of twice the cap and leaves the main isolate as it was', () => {
    const capped = newSpaceAfterCap(2);
    expect(capped.thread).toBeLessThanOrEqual(4);
    expect(capped.main).toBeGreaterThan(8);
  });

  it('leaves V8 its default with 0', () => {
    expect(newSpaceAfterCap(0).thread).toBeGreaterThan(8);
  });
});

/**
 * For eight allocation sites in turn: whether the site's next object is allocated young after a
 * million of its objects survived young collections, with tuneApiHeap applied. V8 pretenures such a
 * site when its optimized code has collected the feedback, which depends on timing: with pretenuring
 * on, most of the eight are pretenured (6-7 of 8 in trial runs, the first site least often); with it off,
 * none can be.
 */
function youngAfterSurvivors(allocationSitePretenuring: boolean): boolean[] {
  const script = `
    import tuning from './lib/process-tuning.ts';
    import { runInThisContext } from 'node:vm';
    tuning.tuneApiHeap({ allocationSitePretenuring: ${allocationSitePretenuring} });
    const young = [];
    for (let s = 0; s < 8; s++) {
      // A script of its own per site; %InYoungGeneration needs --allow-natives-syntax (plain JS, not tsx).
      young.push(runInThisContext(\`(() => {
        function make\${s}(i) { return { i, a: [i] }; }
        let keep = [];
        for (let i = 0; i < 1000000; i++) keep.push(make\${s}(i));
        keep = null;
        return %InYoungGeneration(make\${s}(-1));
      })()\`));
    }
    console.log(JSON.stringify(young));
  `;
  return inFreshProcess(script, ['--allow-natives-syntax']);
}

describe('tuneApiHeap: allocation-site pretenuring', () => {
  it('keeps allocating young from sites whose objects survived in bulk', () => {
    expect(youngAfterSurvivors(false)).toEqual(Array(8).fill(true));
  });

  it("leaves V8's pretenuring on when asked: such sites then allocate old", () => {
    expect(youngAfterSurvivors(true)).toContain(false);
  });
});
