// The login role docker compose runs the service as (deploy/postgres/app-role.sql, job `db-setup`):
// no superuser, yet it owns its database, so the service's boot migrations run under it, on a new
// database and on one an earlier deployment built as the superuser (whose objects it takes over).
// The real script through the real psql, on scratch databases of the test Postgres.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { migrate, MIGRATIONS_DIR, readMigrations } from '../../lib/migrate';
import { migrationScratch } from '../helpers/migration-scratch';
import { testServerUrl } from '../helpers/test-env';
import { PROJECT_ROOT } from '../../scripts/temporal-cli';

const ROLE = `rc_app_${randomBytes(4).toString('hex')}`;
const earlier = migrationScratch('00000000000000_none');
const fresh = migrationScratch('00000000000000_none');

afterAll(async () => {
  // After the scratch databases (the role owns them) are dropped.
  const admin = new Client({ connectionString: testServerUrl() });
  await admin.connect();
  await admin.query(`DROP ROLE IF EXISTS "${ROLE}"`).catch(() => undefined);
  await admin.end();
});

function setUpRole(databaseUrl: string) {
  const r = spawnSync(
    'psql',
    [
      '-X',
      '-q',
      '-v',
      `app_role=${ROLE}`,
      '-v',
      'app_password=not-used-with-trust',
      '-f',
      join(PROJECT_ROOT, 'deploy/postgres/app-role.sql'),
      databaseUrl,
    ],
    { encoding: 'utf8', timeout: 30_000 },
  );
  expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: '' });
}

const asRole = (databaseUrl: string) => {
  const u = new URL(databaseUrl);
  u.username = ROLE;
  return u.toString();
};

/** The current migrations plus one that alters, creates and replaces what only an owner may. */
function migrationsPlusOne(): { dir: string; extra: string } {
  const dir = mkdtempSync(join(tmpdir(), 'rc-role-migrations-'));
  for (const m of readMigrations()) cpSync(join(MIGRATIONS_DIR, m.name), join(dir, m.name), { recursive: true });
  const extra = '29991231000000_owner_only';
  mkdirSync(join(dir, extra));
  writeFileSync(
    join(dir, extra, 'migration.sql'),
    `ALTER TABLE "token_events" ADD COLUMN "probe" INTEGER;
     ALTER TYPE "TokenEventKind" ADD VALUE 'probe';
     CREATE OR REPLACE FUNCTION "repo_connect_dispatch_created"() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
     CREATE TABLE "probe" (id int);`,
  );
  return { dir, extra };
}

async function query<T>(url: string, sql: string): Promise<T[]> {
  const c = new Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query(sql)).rows as T[];
  } finally {
    await c.end();
  }
}

it('takes over a database an earlier deployment migrated as the superuser, and then migrates it without being one', async () => {
  await migrate(earlier.url); // as the superuser, as compose ran the service before
  setUpRole(earlier.url);
  setUpRole(earlier.url); // every `docker compose up` runs it again

  const me = asRole(earlier.url);
  expect(await query(me, `SELECT rolsuper, rolcreaterole, rolcreatedb, rolbypassrls FROM pg_roles WHERE rolname = current_user`)).toEqual([
    { rolsuper: false, rolcreaterole: false, rolcreatedb: false, rolbypassrls: false },
  ]);
  expect(
    await query(
      me,
      `SELECT c.relname, pg_get_userbyid(c.relowner) AS owner FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE n.nspname = 'public' AND c.relkind IN ('r', 'S', 'v', 'm') AND pg_get_userbyid(c.relowner) <> current_user`,
    ),
  ).toEqual([]);

  const { dir, extra } = migrationsPlusOne();
  // An operator's long transaction (as the superuser) holds a table the migration alters: the role,
  // which sees little of other roles' sessions, still names it when it gives up.
  const dba = new Client({ connectionString: earlier.url, application_name: 'dba-psql' });
  dba.on('error', () => undefined);
  await dba.connect();
  await dba.query('BEGIN');
  await dba.query('SELECT count(*) FROM token_events');
  await expect(migrate(me, dir, { lockTimeoutMs: 200, attempts: 2, retryDelayMs: 100 })).rejects.toThrow(
    new RegExp(`${extra} could not get its locks in 2 tries of 200 ms \\(held by pid \\d+ \\(dba-psql, ${new URL(earlier.url).username}, `),
  );
  await dba.query('ROLLBACK');
  await dba.end();
  expect(await migrate(me, dir)).toEqual([extra]);
  // Not a superuser: another database's data stays out of reach.
  await expect(query(me, `CREATE ROLE "${ROLE}_x"`)).rejects.toThrow(/permission denied/);
  await expect(query(me, `SELECT pg_read_file('PG_VERSION')`)).rejects.toThrow(/permission denied/);
});

it('on a new database, applies every migration as that role', async () => {
  setUpRole(fresh.url);
  const me = asRole(fresh.url);
  expect(await migrate(me)).toEqual(readMigrations().map((m) => m.name));
  expect(await query(me, `SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = 'public' AND tableowner <> current_user`)).toEqual([
    { n: 0 },
  ]);
});
