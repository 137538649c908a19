// The API's request histogram writes the same exposition as prom-client's own histogram, and the
// pull counts kept as plain numbers reach the pulls counter when it is read.
import { Histogram, Registry } from 'prom-client';
import { createMetrics, RequestHistogram } from '../../lib/metrics';

const BUCKETS = [0.001, 0.01, 0.1, 1];
const OBSERVED: Array<[Record<string, string>, number]> = [
  [{ route: '/a', method: 'GET', status: '200' }, 0.0005],
  [{ route: '/a', method: 'GET', status: '200' }, 0.001], // on a bound: counted in that bucket
  [{ route: '/a', method: 'GET', status: '200' }, 0.05],
  [{ route: '/b', method: 'POST', status: '401' }, 3], // above every bound: +Inf only
  [{ route: '/a', method: 'GET', status: '200' }, 0.2],
];

it('writes the same Prometheus text as a prom-client histogram fed the same observations', async () => {
  const ours = new Registry();
  const theirs = new Registry();
  const fast = new RequestHistogram('req_seconds', 'Request duration.', ['route', 'method', 'status'], BUCKETS);
  ours.registerMetric(fast as never);
  const reference = new Histogram({
    name: 'req_seconds',
    help: 'Request duration.',
    labelNames: ['route', 'method', 'status'],
    buckets: BUCKETS,
    registers: [theirs],
  });
  for (const [labels, v] of OBSERVED) {
    fast.observe(fast.series(labels), v);
    reference.observe(labels, v);
  }
  const text = await ours.metrics();
  expect(text).toBe(await theirs.metrics());
  expect(text).toContain('req_seconds_bucket{le="0.001",route="/a",method="GET",status="200"} 2');
  expect(text).toContain('req_seconds_count{route="/b",method="POST",status="401"} 1');
  fast.reset();
  expect(await ours.metrics()).not.toContain('req_seconds_count');
});

it('adds the plain hit and miss counts to repo_connect_pulls_total when it is read, once', async () => {
  const m = createMetrics({ defaults: false });
  m.servedPulls.hit += 3;
  m.servedPulls.miss += 1;
  m.pulls.inc({ result: 'refreshed' });
  const read = async () => Object.fromEntries((await m.pulls.get()).values.map((v) => [v.labels.result, v.value]));
  expect(await read()).toEqual({ hit: 3, miss: 1, refreshed: 1 });
  m.servedPulls.hit += 2;
  expect(await read()).toEqual({ hit: 5, miss: 1, refreshed: 1 });
  expect(await m.registry.metrics()).toContain('repo_connect_pulls_total{result="hit"} 5');
});
