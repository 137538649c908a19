// Prometheus metrics, one registry per process. Names start with repo_connect_. Labels are small,
// fixed sets (provider, outcome, code): never ids or anything secret.
import {
  Counter,
  Gauge,
  Histogram,
  Registry,
  collectDefaultMetrics,
  type MetricType,
  type MetricObjectWithValues,
  type MetricValueWithName,
} from 'prom-client';

export interface Metrics {
  registry: Registry;
  mints: Counter<'provider' | 'outcome' | 'reason'>;
  refreshLateness: Histogram<'provider'>;
  pushLatency: Histogram<'outcome'>;
  pulls: Counter<'result'>;
  /**
   * Pulls served from memory (hit) or after a Postgres read (miss), added to `pulls` when it is read;
   * `lane`: those of the hits answered in the HTTP server's lane, before the framework (`laneHits`).
   */
  servedPulls: { hit: number; miss: number; lane: number };
  laneHits: Counter;
  providerErrors: Counter<'provider' | 'code'>;
  gitlabRefreshes: Counter<'outcome'>;
  projectTokens: Counter<'action'>;
  revocations: Counter<'outcome'>;
  activeDispatches: Gauge<'status'>;
  pendingRevocations: Gauge<'provider'>;
  httpRequests: RequestHistogram;
}

/** One label set's buckets of a {@link RequestHistogram}. */
export interface HistogramSeries {
  readonly labels: Readonly<Record<string, string>>;
  /** Observations per bucket (not cumulative); the last slot counts those above every bound. */
  readonly counts: number[];
  sum: number;
  count: number;
}

/**
 * A Prometheus histogram for every API request, the pull route's included: a caller resolves the
 * series of a label set once and observing is a bucket search and three additions. prom-client's
 * own histogram hashes the label object on every observation, a visible share of the pull route's
 * cost (README, "Performance"). The exposition is the same (`_bucket` with `le`, `_sum`, `_count`).
 */
export class RequestHistogram {
  readonly aggregator = 'sum';
  private readonly bySeries = new Map<string, HistogramSeries>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
    readonly buckets: readonly number[],
  ) {}

  /** The series of `labels` (created empty on first use), to observe into. */
  series(labels: Record<string, string>): HistogramSeries {
    const key = this.labelNames.map((n) => labels[n] ?? '').join('\u0000');
    let s = this.bySeries.get(key);
    if (!s)
      this.bySeries.set(key, (s = { labels: { ...labels }, counts: new Array<number>(this.buckets.length + 1).fill(0), sum: 0, count: 0 }));
    return s;
  }

  observe(series: HistogramSeries, value: number): void {
    let i = 0;
    while (i < this.buckets.length && value > this.buckets[i]) i++;
    series.counts[i] += 1;
    series.sum += value;
    series.count += 1;
  }

  async get(): Promise<MetricObjectWithValues<MetricValueWithName<string>>> {
    const values: Array<MetricValueWithName<string>> = [];
    for (const s of this.bySeries.values()) {
      let acc = 0;
      this.buckets.forEach((le, i) => {
        acc += s.counts[i];
        values.push({ metricName: `${this.name}_bucket`, labels: { le, ...s.labels }, value: acc });
      });
      values.push({ metricName: `${this.name}_bucket`, labels: { le: '+Inf', ...s.labels }, value: s.count });
      values.push({ metricName: `${this.name}_sum`, labels: { ...s.labels }, value: s.sum });
      values.push({ metricName: `${this.name}_count`, labels: { ...s.labels }, value: s.count });
    }
    // MetricType is a type only: prom-client exports no value for the enum.
    return {
      name: this.name,
      help: this.help,
      type: 'histogram' as unknown as MetricType,
      aggregator: this.aggregator,
      collect: () => undefined,
      values,
    };
  }

  reset(): void {
    this.bySeries.clear();
  }
}

/** Builds the metrics of one process; `defaults` adds Node's process metrics. */
export function createMetrics(opts: { defaults?: boolean } = {}): Metrics {
  const registry = new Registry();
  if (opts.defaults !== false) collectDefaultMetrics({ register: registry, prefix: 'repo_connect_process_' });
  const registers = [registry];
  const servedPulls = { hit: 0, miss: 0, lane: 0 };
  const httpRequests = new RequestHistogram(
    'repo_connect_http_request_duration_seconds',
    'API request duration by route pattern, method and status.',
    ['route', 'method', 'status'],
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
  );
  registry.registerMetric(httpRequests as never);
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
      help: 'Time to push a token to a container, by outcome (acknowledged, gone, refused, failed).',
      labelNames: ['outcome'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    }),
    pulls: new Counter({
      name: 'repo_connect_pulls_total',
      help: 'Token pulls by result: hit (served from memory), miss (read from Postgres), refreshed (asked the workflow), or an error class.',
      labelNames: ['result'],
      registers,
      // The two results of every fresh pull are plain counts until scraped.
      collect() {
        for (const result of ['hit', 'miss'] as const) {
          if (servedPulls[result] > 0) this.inc({ result }, servedPulls[result]);
          servedPulls[result] = 0;
        }
      },
    }),
    servedPulls,
    laneHits: new Counter({
      name: 'repo_connect_pull_lane_hits_total',
      help: 'Pulls answered from memory before the web framework (api/routes/pull-lane.ts); also counted as result="hit" in repo_connect_pulls_total.',
      registers,
      collect() {
        if (servedPulls.lane > 0) this.inc(servedPulls.lane);
        servedPulls.lane = 0;
      },
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
    projectTokens: new Counter({
      name: 'repo_connect_gitlab_project_tokens_total',
      help: 'GitLab project access token calls by what happened (created, rotated, recreated, refused, revoked).',
      labelNames: ['action'],
      registers,
    }),
    revocations: new Counter({
      name: 'repo_connect_token_revocations_total',
      help: 'GitHub token revocations by outcome (revoked, already_invalid, not_revocable, failed; queued: kept for the worker to retry; expired: a queued token that expired first).',
      labelNames: ['outcome'],
      registers,
    }),
    activeDispatches: new Gauge({
      name: 'repo_connect_dispatches',
      help: 'Dispatches by status (sampled from Postgres when scraped).',
      labelNames: ['status'],
      registers,
    }),
    pendingRevocations: new Gauge({
      name: 'repo_connect_pending_revocations',
      help: 'Tokens whose revocation failed, waiting for the workers to retry it, by provider (sampled from Postgres when an API is scraped; absent when not known).',
      labelNames: ['provider'],
      registers,
    }),
    httpRequests,
  };
}
