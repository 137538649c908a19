// Process settings of the service that must be in place before it starts, so they cannot be read
// from the configuration: glibc reads MALLOC_ARENA_MAX when the process starts. The image
// (Dockerfile), `npm start`, the bench and the ops tests all start the service with these (a test
// checks the Dockerfile). Measured with `npm run bench` (README, "Performance").

/**
 * Process environment for every role. The worker's native threads (the Temporal core's runtime,
 * libuv, the workflow thread) each get a malloc arena of their own by default, up to 8 per core,
 * and keep freed memory in them; two keep a worker's RSS markedly lower with no measurable change
 * in refresh lateness (README, "Performance").
 */
export const SERVICE_PROCESS_ENV: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: '2' };
