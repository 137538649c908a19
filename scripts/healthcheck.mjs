// Container health probe (the image's HEALTHCHECK and docker-compose.yml): every role must answer
// GET /healthz with 200: roles api and all on the API's port (Postgres and Temporal reachable), a
// worker-only process on its metrics port (those two, and every task queue's worker running).
// Plain JavaScript: probes run every few seconds and should not pay for a TypeScript loader.
// Tooling, like prisma.config.ts, so it reads the environment directly.
const role = process.env.ROLE ?? 'all';
const url =
  role === 'worker'
    ? `http://127.0.0.1:${process.env.WORKER_METRICS_PORT ?? '9464'}/healthz`
    : `http://127.0.0.1:${process.env.PORT ?? '8080'}/healthz`;

try {
  const res = await fetch(url, { signal: AbortSignal.timeout(4000) });
  await res.arrayBuffer();
  process.exit(res.ok ? 0 : 1);
} catch {
  process.exit(1);
}
