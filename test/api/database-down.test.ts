// Postgres unreachable: the API answers 503 database_unavailable with Retry-After (the request may
// be repeated as it was), never a 500, and answers again once Postgres is back.
import { randomUUID } from 'node:crypto';
import { eventually, newOwner, startHarness, type Harness } from '../helpers/harness';
import { PgProxy } from '../helpers/pg-proxy';
import { testDatabaseUrl } from '../helpers/test-env';
import { expectError } from '../helpers/api';
import { createDb, isDatabaseUnavailable, isTransactionConflict } from '../../lib/db';

let proxy: PgProxy;
let h: Harness;

beforeAll(async () => {
  proxy = await PgProxy.start(testDatabaseUrl());
  h = await startHarness({ env: { DATABASE_URL: proxy.url }, worker: false });
});
afterAll(async () => {
  proxy?.up();
  await h?.close();
  await proxy?.close();
});

it('answers 503 database_unavailable while Postgres is away, for management calls and pulls, then serves again', async () => {
  const town = await h.call<{ id: string }>('POST', '/api/towns', { name: 'db-down', owner_id: newOwner() });
  expect(town.status).toBe(201);
  proxy.down();
  try {
    const read = await h.call('GET', `/api/towns/${town.body.id}`);
    expectError(read, 503, 'database_unavailable');
    expect(read.headers.get('retry-after')).toBe('2');
    const pulled = await fetch(`${h.url}/api/internal/rigs/${randomUUID()}/git-token`, {
      method: 'POST',
      headers: { authorization: `Bearer rcc_${randomUUID().replace(/-/g, '')}` },
    });
    expect([pulled.status, ((await pulled.json()) as { error: { code: string } }).error.code]).toEqual([503, 'database_unavailable']);
    const health = await fetch(`${h.url}/healthz`);
    expect([health.status, await health.json()]).toEqual([503, { postgres: 'down', temporal: 'ok' }]);
  } finally {
    proxy.up();
  }
  await eventually(async () => (await h.call('GET', `/api/towns/${town.body.id}`)).status === 200, 10_000, 'the API to answer again');
});

it('tells an unreachable Postgres from a bad statement', async () => {
  const nowhere = createDb('postgresql://postgres@127.0.0.1:1/nowhere');
  try {
    const refused = await nowhere.$queryRaw`SELECT 1`.catch((e: unknown) => e);
    expect(isDatabaseUnavailable(refused)).toBe(true);
  } finally {
    await nowhere.$disconnect();
  }
  const wrong = await h.core.db.$queryRawUnsafe('SELECT no_such_column FROM towns').catch((e: unknown) => e);
  expect(wrong).toBeInstanceOf(Error);
  expect(isDatabaseUnavailable(wrong)).toBe(false);
  expect(isDatabaseUnavailable(new Error('Connection terminated unexpectedly'))).toBe(true);
  expect(isDatabaseUnavailable(new TypeError('Connection terminated unexpectedly'))).toBe(false);
  // A client hanging up mid-request carries a socket code too: that is not Postgres.
  expect(isDatabaseUnavailable(Object.assign(new Error('aborted'), { code: 'ECONNRESET' }))).toBe(false);
  expect(
    isDatabaseUnavailable(Object.assign(new Error('the database system is shutting down'), { code: '57P03', severity: 'FATAL' })),
  ).toBe(true);
  // A transaction that lost a deadlock or timed out on a lock may succeed when tried again; a bad statement may not.
  expect(isTransactionConflict(wrong)).toBe(false);
  expect(isTransactionConflict(Object.assign(new Error('deadlock detected'), { code: '40P01', severity: 'ERROR' }))).toBe(true);
  const holder = createDb(testDatabaseUrl(), { max: 1 });
  try {
    const key = Math.floor(Math.random() * 1e9);
    await holder.$transaction(async (held) => {
      await held.$queryRawUnsafe(`SELECT pg_advisory_xact_lock(${key})::text`);
      const timedOut = await h.core.db
        .$transaction(async (tx) => {
          await tx.$executeRawUnsafe('SET LOCAL lock_timeout = 50');
          await tx.$queryRawUnsafe(`SELECT pg_advisory_xact_lock(${key})::text`);
        })
        .catch((e: unknown) => e);
      expect(isTransactionConflict(timedOut)).toBe(true);
      expect(isDatabaseUnavailable(timedOut)).toBe(false);
    });
  } finally {
    await holder.$disconnect();
  }
});
