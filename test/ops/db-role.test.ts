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

const asRoleNamed = (databaseUrl: string, role: string) => {
  const u = new URL(databaseUrl);
  u.username = role;
  return u.toString();
};
const asRole = (databaseUrl: string) => asRoleNamed(databaseUrl, ROLE);

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

// Temporal's login role (deploy/postgres/temporal-role.sql, the same job): it owns Temporal's two
// databases, created by the job when missing, so `temporal-sql-tool setup-schema` / `update-schema`
// (deploy/temporal/setup-schema.sh) run as it; before, compose ran Temporal as the superuser. The
// tool itself is not run here: the statements below are the kinds its schema versions use.
describe("Temporal's login role", () => {
  const hex = randomBytes(4).toString('hex');
  const TEMPORAL = `rc_temporal_${hex}`;
  const earlierDbs = { temporal_db: `rc_tmp_old_${hex}`, visibility_db: `rc_vis_old_${hex}` };
  const newDbs = { temporal_db: `rc_tmp_new_${hex}`, visibility_db: `rc_vis_new_${hex}` };
  const onServer = (db: string) => {
    const u = new URL(testServerUrl());
    u.pathname = `/${db}`;
    return u.toString();
  };

  afterAll(async () => {
    for (const db of [...Object.values(earlierDbs), ...Object.values(newDbs)])
      await query(onServer('postgres'), `DROP DATABASE IF EXISTS "${db}" WITH (FORCE)`).catch(() => undefined);
    await query(onServer('postgres'), `DROP ROLE IF EXISTS "${TEMPORAL}"`).catch(() => undefined);
  });

  function setUpTemporal(dbs: typeof earlierDbs) {
    const vars = { temporal_role: TEMPORAL, temporal_password: 'not-used-with-trust', ...dbs };
    const r = spawnSync(
      'psql',
      [
        '-X',
        '-q',
        ...Object.entries(vars).flatMap(([k, v]) => ['-v', `${k}=${v}`]),
        '-f',
        join(PROJECT_ROOT, 'deploy/postgres/temporal-role.sql'),
        onServer('postgres'),
      ],
      { encoding: 'utf8', timeout: 30_000 },
    );
    expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: '' });
  }

  /** What a schema version does, as the role: alter and create tables, indexes and types. */
  async function upgradeAsRole(db: string) {
    const me = asRoleNamed(onServer(db), TEMPORAL);
    await query(me, `CREATE TABLE IF NOT EXISTS schema_version (version_partition INT PRIMARY KEY, db_name TEXT)`);
    await query(me, `ALTER TABLE schema_version ADD COLUMN curr_version TEXT`);
    await query(me, `CREATE TABLE executions (shard_id INT, run_id BYTEA, PRIMARY KEY (shard_id, run_id))`);
    await query(me, `CREATE INDEX ON executions (run_id)`);
    await query(me, `CREATE TYPE probe_kind AS ENUM ('a'); ALTER TYPE probe_kind ADD VALUE 'b'`);
    expect(await query(me, `SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = 'public' AND tableowner <> current_user`)).toEqual([
      { n: 0 },
    ]);
  }

  it('takes over the databases an earlier deployment set up as the superuser, whose schema it then upgrades without being one', async () => {
    for (const db of Object.values(earlierDbs)) {
      await query(onServer('postgres'), `CREATE DATABASE "${db}"`);
      await query(
        onServer(db),
        `CREATE TABLE schema_version (version_partition INT PRIMARY KEY, db_name TEXT);
         CREATE SEQUENCE free_standing; CREATE TYPE old_kind AS ENUM ('x');`,
      );
    }
    setUpTemporal(earlierDbs);
    setUpTemporal(earlierDbs); // every `docker compose up` runs it again
    for (const db of Object.values(earlierDbs)) {
      await upgradeAsRole(db);
      await query(asRoleNamed(onServer(db), TEMPORAL), `ALTER TYPE old_kind ADD VALUE 'y'; ALTER SEQUENCE free_standing RESTART`);
    }
    expect(
      await query(
        asRoleNamed(onServer(earlierDbs.temporal_db), TEMPORAL),
        `SELECT rolsuper, rolcreaterole, rolcreatedb, rolbypassrls FROM pg_roles WHERE rolname = current_user`,
      ),
    ).toEqual([{ rolsuper: false, rolcreaterole: false, rolcreatedb: false, rolbypassrls: false }]);
    await expect(query(asRoleNamed(onServer(earlierDbs.temporal_db), TEMPORAL), `CREATE DATABASE "${TEMPORAL}_x"`)).rejects.toThrow(
      /permission denied/,
    );
  });

  it("creates both databases when missing, owned by the role, and keeps the role out of the service's database", async () => {
    setUpTemporal(newDbs);
    expect(
      await query(
        onServer('postgres'),
        `SELECT datname, pg_get_userbyid(datdba) AS owner FROM pg_database WHERE datname LIKE '%_new_${hex}' ORDER BY datname`,
      ),
    ).toEqual([
      { datname: newDbs.temporal_db, owner: TEMPORAL },
      { datname: newDbs.visibility_db, owner: TEMPORAL },
    ]);
    for (const db of Object.values(newDbs)) await upgradeAsRole(db);
    setUpRole(earlier.url); // app-role.sql: only its role may connect to the service's database
    await expect(query(asRoleNamed(earlier.url, TEMPORAL), 'SELECT 1')).rejects.toThrow(/permission denied for database/);
  });
});
