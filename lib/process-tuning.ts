// Process settings of the service. The environment that must be in place before it starts, so it
// cannot be read from the configuration (glibc reads MALLOC_ARENA_MAX when the process starts): the
// image (Dockerfile), `npm start`, the bench and the ops tests all start the service with it (a test
// checks the Dockerfile). And the V8 settings each role makes at start: the API's before it serves, the
// worker's before its workflow threads start.
// Measured with `npm run bench` (README, "Performance").
import { setFlagsFromString } from 'node:v8';

/**
 * Process environment for every role. The worker's native threads (the Temporal core's runtime,
 * libuv, the workflow thread) each get a malloc arena of their own by default, up to 8 per core,
 * and keep freed memory in them; two keep a worker's RSS markedly lower with no measurable change
 * in refresh lateness (README, "Performance").
 */
export const SERVICE_PROCESS_ENV: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: '2' };

/**
 * V8 settings of a process that serves the API, set before it serves: allocation-site pretenuring
 * off. V8 allocates straight into the old generation the objects of a site whose objects survived a
 * young collection in bulk. Under a steady stream of pulls, about half of the API processes measured
 * fell into a state they never left: each young collection promoted about 3 MB (a fifth of what was
 * allocated since the one before) where a healthy process promotes a few kB, and took 8-9 ms instead
 * of under 1 ms; pulls had a p99 of 8-11 ms and each cost a third more CPU. That fits objects
 * allocated old that die at once, each holding the young objects it points to through the next young
 * collections (the site itself was not caught). With pretenuring off, none of the processes measured
 * fell into it (README, "Performance"). A worker-only process keeps V8's default.
 */
export function tuneApiHeap(api: { allocationSitePretenuring: boolean }): void {
  if (!api.allocationSitePretenuring) setFlagsFromString('--no-allocation-site-pretenuring');
}

/**
 * V8 settings of a worker process, set before its Temporal Workers (and so their workflow threads)
 * are created (README, "Performance"):
 * - heap growth: a worker holds a fleet of runs and makes garbage at every refresh; V8's default
 *   growth lets a heap reach about three times its live size. V8 reads it at every collection, so
 *   it applies to every isolate of the process.
 * - the workflow threads' semi-space: V8 reads it when it sets up an isolate's heap, so it caps the
 *   isolates created from now on (the workflow threads, where workflow code runs) while the main
 *   isolate, already running, keeps its default (16 MB). A burst of dispatch starts grows each
 *   workflow thread's young generation to 32 MB, which an idle worker never shrinks back; with 2 MB,
 *   sleeping dispatches cost about half the worker memory and refreshes are as timely. Capping the
 *   main isolate too made refreshes late, so it is left alone.
 * `0` keeps V8's default for either.
 */
export function tuneWorkerHeaps(worker: { heapGrowthPercent: number; workflowSemiSpaceMb: number }): void {
  if (worker.heapGrowthPercent > 0) setFlagsFromString(`--heap-growing-percent=${worker.heapGrowthPercent}`);
  if (worker.workflowSemiSpaceMb > 0) setFlagsFromString(`--max-semi-space-size=${worker.workflowSemiSpaceMb}`);
}
