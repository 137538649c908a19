// A scratch database at the state a deployment had before one migration: how a migration's data
// step is tested on rows written by the schema before it. Each test file gets its own database.
import { randomBytes } from 'node:crypto';
import { cpSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { migrate, MIGRATIONS_DIR, readMigrations } from '../../lib/migrate';
import { testDatabaseUrl } from './test-env';

async function onServer(sql: string): Promise<void> {
  const admin = new URL(testDatabaseUrl());
  admin.pathname = '/postgres';
  const a = new Client({ connectionString: admin.toString() });
  await a.connect();
  await a.query(sql);
  await a.end();
}

/** Creates the database in beforeAll and drops it in afterAll of the calling test file. */
export function migrationScratch(migration: string) {
  const name = `rc_mig_${randomBytes(4).toString('hex')}`;
  const url = new URL(testDatabaseUrl());
  url.pathname = `/${name}`;
  beforeAll(() => onServer(`CREATE DATABASE "${name}"`));
  afterAll(() => onServer(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`));
  return {
    url: url.toString(),
    /** Applies the migrations before `migration`, as a database deployed earlier has them; returns how many. */
    async migrateBefore(): Promise<number> {
      const before = mkdtempSync(join(tmpdir(), 'rc-migrations-'));
      const earlier = readMigrations().filter((m) => m.name < migration);
      for (const m of earlier) cpSync(join(MIGRATIONS_DIR, m.name), join(before, m.name), { recursive: true });
      await migrate(url.toString(), before);
      return earlier.length;
    },
    /** Applies the rest; returns the names applied. */
    migrateRest: () => migrate(url.toString()),
    /** The names `migrateRest` must apply: `migration` and every later one. */
    rest: () =>
      readMigrations()
        .filter((m) => m.name >= migration)
        .map((m) => m.name),
  };
}
