// Container health probe (the image's HEALTHCHECK and docker-compose.yml): roles api and all must
// answer GET /healthz with 200 (Postgres and Temporal reachable); a worker-only process has no API,
// so its /metrics listener answering shows it is up. Plain JavaScript: probes run every few
// seconds and should not pay for a TypeScript loader. Tooling, like prisma.config.ts, so it reads
// the environment directly.
const role = process.env.ROLE ?? 'all';
const url =
  role === 'worker'
    ? `http://127.0.0.1:${process.env.WORKER_METRICS_PORT ?? '9464'}/metrics`
    : `http://127.0.0.1:${process.env.PORT ?? '8080'}/healthz`;

try {
  const res = await fetch(url, { signal: AbortSignal.timeout(4000) });
  await res.arrayBuffer();
  process.exit(res.ok ? 0 : 1);
} catch {
  process.exit(1);
}
