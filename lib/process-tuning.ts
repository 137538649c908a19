// Memory settings of a service process that must be in place before it starts, so they cannot be
// read from the configuration: glibc reads MALLOC_ARENA_MAX when the process starts, and V8 sizes
// an isolate's young generation when it creates the isolate. The image (Dockerfile), the compose
// worker service, `npm start` and the bench all start the service with these (a test checks the
// deployment files). Measured with `npm run bench` (README, "Worker memory").

/**
 * Process environment for every role. The worker's native threads (the Temporal core's runtime,
 * libuv, the workflow thread) each get a malloc arena of their own by default, up to 8 per core,
 * and keep freed memory in them: with two, a worker's RSS per 1,000 dispatches fell by about
 * 80 MB in the bench, with no measurable change in refresh lateness.
 */
export const SERVICE_PROCESS_ENV: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: '2' };

/**
 * Young-generation semi-space of a worker's isolates, in MB (V8's default grows to 16). A worker
 * allocates little per refresh and keeps a large old generation, so a small nursery costs a few
 * more scavenges and saves up to 28 MB per isolate (two 2 MB semi-spaces instead of two 16 MB).
 */
export const WORKER_SEMI_SPACE_MB = 2;

/** V8 flag for a worker-only process's main isolate (NODE_OPTIONS of the compose worker service). */
export const WORKER_NODE_OPTIONS = `--max-semi-space-size=${WORKER_SEMI_SPACE_MB}`;

/** Variables of the process itself (not lib/config.ts) that the deployment files may set. */
export const PROCESS_VARIABLES: readonly string[] = ['NODE_OPTIONS', ...Object.keys(SERVICE_PROCESS_ENV)];

/** Whether the operator chose a semi-space size themselves (command line or NODE_OPTIONS). */
export function semiSpaceChosen(execArgv: readonly string[], nodeOptions: string | undefined): boolean {
  return [...execArgv, ...(nodeOptions ?? '').split(/\s+/)].some((a) => /^--max[-_]semi[-_]space[-_]size\b/.test(a));
}

/**
 * Node options for starting a process of `role`: only a worker-only process shrinks its main
 * isolate's nursery (an API's serves requests), and not when NODE_OPTIONS already sizes it.
 */
export function serviceNodeArgs(role: string | undefined, nodeOptions: string | undefined): string[] {
  return role === 'worker' && !semiSpaceChosen([], nodeOptions) ? [WORKER_NODE_OPTIONS] : [];
}
