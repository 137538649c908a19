// The boot migrations on a real Postgres (a scratch database, migrations in a temporary folder).
// A migration that needs a table's lock while a long transaction holds it (an open psql, a slow
// report) must not stall the running service: every query on that table would queue behind the
// migration's lock request. It waits at most its lock timeout, rolls back, tries again, and in the
// end names who held the lock. And an applied migration whose file only changed line endings (a
// Windows checkout) still matches, as with `prisma migrate deploy`, while one whose text changed does not.
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { describeWait, migrate, MigrationError, type MigrationWait } from '../../lib/migrate';
import { migrationScratch } from '../helpers/migration-scratch';

const scratch = migrationScratch('00000000000000_none');

function migrations(...sqls: string[]): string {
  const dir = mkdtempSync(join(tmpdir(), 'rc-migrations-'));
  sqls.forEach((sql, i) => {
    mkdirSync(join(dir, `2026010100000${i}_m${i}`));
    writeFileSync(join(dir, `2026010100000${i}_m${i}`, 'migration.sql'), sql);
  });
  return dir;
}

const clients: Client[] = [];
async function connect(name: string): Promise<Client> {
  const c = new Client({ connectionString: scratch.url, application_name: name });
  c.on('error', () => undefined); // the scratch database is dropped with FORCE at the end
  await c.connect();
  clients.push(c);
  return c;
}
afterEach(async () => {
  for (const c of clients.splice(0)) await c.end().catch(() => undefined);
});

it('gives up on a lock a long transaction holds without stalling the queries behind it, rolls back, and names the holder', async () => {
  await migrate(scratch.url, migrations('CREATE TABLE t (id int);'));
  const dir = migrations('CREATE TABLE t (id int);', 'ALTER TABLE t ADD COLUMN c int;');
  const long = await connect('long-report');
  const service = await connect('service');
  await long.query('BEGIN');
  await long.query('SELECT * FROM t');

  const waits: MigrationWait[] = [];
  const migrating = migrate(scratch.url, dir, { lockTimeoutMs: 200, attempts: 3, retryDelayMs: 300, onWait: (w) => waits.push(w) });
  const settled = migrating.then(
    () => null,
    (e: unknown) => e,
  );
  // While the migration waits its turn, the service's reads of the table go on (they would queue
  // behind a lock request that never gives up, and time out here).
  await service.query('SET statement_timeout = 3000');
  for (let i = 0; i < 5; i++) {
    await service.query('SELECT * FROM t');
    await new Promise((r) => setTimeout(r, 100));
  }
  const err = await settled;
  expect(err).toBeInstanceOf(MigrationError);
  expect((err as Error).message).toMatch(
    /20260101000001_m1 could not get its locks in 3 tries of 200 ms \(held by pid \d+ \(long-report, /,
  );
  // Each try that is tried again was said, with the holder, while it waited.
  expect(waits).toEqual(
    [1, 2].map((attempt) => expect.objectContaining({ on: 'table_lock', migration: '20260101000001_m1', attempt, attempts: 3 })),
  );
  for (const w of waits)
    expect(describeWait(w)).toMatch(/timed out on a table lock \(held by pid \d+ \(long-report, .*\), try [12] of 3; trying again$/);

  // Nothing of it was written.
  const { rows } = await service.query(`SELECT migration_name FROM "_prisma_migrations" ORDER BY migration_name`);
  expect(rows.map((r) => r.migration_name)).toEqual(['20260101000000_m0']);
  const cols = await service.query(`SELECT column_name FROM information_schema.columns WHERE table_name = 't' ORDER BY column_name`);
  expect(cols.rows.map((r) => r.column_name)).toEqual(['id']);
  await long.query('ROLLBACK');
});

it('applies the migration on a later try once the long transaction ends', async () => {
  await migrate(scratch.url, migrations('CREATE TABLE t (id int);'));
  const dir = migrations('CREATE TABLE t (id int);', 'ALTER TABLE t ADD COLUMN c int;');
  const long = await connect('long-report-2');
  await long.query('BEGIN');
  await long.query('SELECT * FROM t');
  const migrating = migrate(scratch.url, dir, { lockTimeoutMs: 200, attempts: 50, retryDelayMs: 100 });
  await new Promise((r) => setTimeout(r, 700)); // a few tries time out meanwhile
  await long.query('COMMIT');
  expect(await migrating).toEqual(['20260101000001_m1']);
});

it('accepts an applied migration whose line endings changed, as prisma migrate deploy does, and refuses one whose text changed', async () => {
  const sql = '-- a table\nCREATE TABLE crlf (id int);\n';
  const dir = migrations('CREATE TABLE t (id int);', 'ALTER TABLE t ADD COLUMN c int;', sql);
  expect(await migrate(scratch.url, dir)).toContain('20260101000002_m2');
  const file = join(dir, '20260101000002_m2', 'migration.sql');

  writeFileSync(file, readFileSync(file, 'utf8').replace(/\n/g, '\r\n'));
  expect(await migrate(scratch.url, dir)).toEqual([]);

  writeFileSync(file, sql.replace('crlf', 'crlf2'));
  await expect(migrate(scratch.url, dir)).rejects.toThrow(/20260101000002_m2 was modified after it was applied/);
});

it('waits for another process migrating (the advisory lock prisma migrate deploy takes), saying who holds it, then applies', async () => {
  // Runs last: the file's database has m0-m2 from the tests above; m3 is new.
  const dir = migrations(
    'CREATE TABLE t (id int);',
    'ALTER TABLE t ADD COLUMN c int;',
    '-- a table\nCREATE TABLE crlf (id int);\n',
    'CREATE TABLE waited (id int);',
  );
  const other = await connect('other-migrator');
  await other.query('SELECT pg_advisory_lock(72707369)');
  const waits: MigrationWait[] = [];
  const migrating = migrate(scratch.url, dir, { lockTimeoutMs: 150, onWait: (w) => waits.push(w) });
  while (waits.length < 3) await new Promise((r) => setTimeout(r, 50));
  // Nothing is applied while the other process holds the lock.
  expect((await other.query(`SELECT to_regclass('waited') AS t`)).rows[0].t).toBeNull();
  await other.query('SELECT pg_advisory_unlock(72707369)');
  expect(await migrating).toEqual(['20260101000003_m3']);
  expect(waits[0]).toMatchObject({ on: 'migration_lock', heldBy: expect.stringMatching(/^pid \d+ \(other-migrator, /) });
  expect(waits.every((w) => w.on === 'migration_lock' && w.waitedMs >= 100)).toBe(true);
  expect(describeWait(waits[0])).toMatch(
    /^waited \d+\.\d s for the migration lock \(held by pid \d+ \(other-migrator, .*\)\): another process is migrating$/,
  );
});
