// Prometheus metrics, one registry per process. Names start with repo_connect_. Labels are small,
// fixed sets (provider, outcome, code): never ids or anything secret.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface Metrics {
  registry: Registry;
  mints: Counter<'provider' | 'outcome' | 'reason'>;
  refreshLateness: Histogram<'provider'>;
  pushLatency: Histogram<'outcome'>;
  pulls: Counter<'result'>;
  providerErrors: Counter<'provider' | 'code'>;
  gitlabRefreshes: Counter<'outcome'>;
  revocations: Counter<'outcome'>;
  activeDispatches: Gauge<'status'>;
  httpRequests: Histogram<'route' | 'method' | 'status'>;
}

/** Builds the metrics of one process; `defaults` adds Node's process metrics. */
export function createMetrics(opts: { defaults?: boolean } = {}): Metrics {
  const registry = new Registry();
  if (opts.defaults !== false) collectDefaultMetrics({ register: registry, prefix: 'repo_connect_process_' });
  const registers = [registry];
  return {
    registry,
    mints: new Counter({
      name: 'repo_connect_token_mints_total',
      help: 'Token mints by provider (github, gitlab, town), outcome (minted, reused, failed) and reason (initial; refreshes: scheduled, pull, changed, retry).',
      labelNames: ['provider', 'outcome', 'reason'],
      registers,
    }),
    refreshLateness: new Histogram({
      name: 'repo_connect_refresh_lateness_seconds',
      help: 'How late a scheduled refresh started compared with its planned time.',
      labelNames: ['provider'],
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60],
      registers,
    }),
    pushLatency: new Histogram({
      name: 'repo_connect_push_duration_seconds',
      help: 'Time to push a token to a container, by outcome (acknowledged, gone, failed).',
      labelNames: ['outcome'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    }),
    pulls: new Counter({
      name: 'repo_connect_pulls_total',
      help: 'Token pulls by result: hit (served from memory), miss (read from Postgres), refreshed (asked the workflow), or an error class.',
      labelNames: ['result'],
      registers,
    }),
    providerErrors: new Counter({
      name: 'repo_connect_provider_errors_total',
      help: 'Provider failures by provider and typed code.',
      labelNames: ['provider', 'code'],
      registers,
    }),
    gitlabRefreshes: new Counter({
      name: 'repo_connect_gitlab_grant_refreshes_total',
      help: 'GitLab refresh_token grants by outcome (ok, invalid_grant, error).',
      labelNames: ['outcome'],
      registers,
    }),
    revocations: new Counter({
      name: 'repo_connect_token_revocations_total',
      help: 'Token revocations at stop by outcome (revoked, already_invalid, not_revocable).',
      labelNames: ['outcome'],
      registers,
    }),
    activeDispatches: new Gauge({
      name: 'repo_connect_dispatches',
      help: 'Dispatches by status (sampled from Postgres when scraped).',
      labelNames: ['status'],
      registers,
    }),
    httpRequests: new Histogram({
      name: 'repo_connect_http_request_duration_seconds',
      help: 'API request duration by route pattern, method and status.',
      labelNames: ['route', 'method', 'status'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    }),
  };
}
