// Process settings of the service that must be in place before it starts, so they cannot be read
// from the configuration: glibc reads MALLOC_ARENA_MAX when the process starts. The image
// (Dockerfile), `npm start`, the bench and the ops tests all start the service with these (a test
// checks the Dockerfile). Measured with `npm run bench` (README, "Performance").
import { setFlagsFromString } from 'node:v8';

/**
 * Process environment for every role. The worker's native threads (the Temporal core's runtime,
 * libuv, the workflow thread) each get a malloc arena of their own by default, up to 8 per core,
 * and keep freed memory in them; two keep a worker's RSS markedly lower with no measurable change
 * in refresh lateness (README, "Performance").
 */
export const SERVICE_PROCESS_ENV: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: '2' };

/**
 * Caps the V8 semi-space of the isolates this process creates from now on: the workflow threads
 * a Temporal Worker starts, where workflow code runs. V8 reads the flag when it sets up an isolate's
 * heap, so the main isolate, already running, keeps its default (16 MB). A burst of dispatch starts
 * grows each workflow thread's young generation to 32 MB, and an idle worker never shrinks it back;
 * with 2 MB, sleeping dispatches cost about half the worker memory and refreshes are as timely
 * (README, "Performance"). Capping the main isolate too made refreshes late, so it is left alone.
 * `0` keeps V8's default. Call it before the workers are created.
 */
export function capWorkerThreadSemiSpace(megabytes: number): void {
  if (megabytes > 0) setFlagsFromString(`--max-semi-space-size=${megabytes}`);
}
