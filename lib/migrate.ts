// Applies prisma/migrations/*/migration.sql offline and records them in `_prisma_migrations` the
// way `prisma migrate deploy` does (same table, checksum and advisory lock), so either tool can
// take over a database the other one started.
import { createHash, randomUUID } from 'node:crypto';
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Client } from 'pg';

/** The advisory lock key Prisma's schema engine takes around migrations. */
const PRISMA_MIGRATE_LOCK = 72707369;

export const MIGRATIONS_DIR = resolve(__dirname, '..', 'prisma', 'migrations');

export interface MigrationFile {
  name: string;
  sql: string;
  checksum: string;
}

const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

/**
 * Whether a migration's text is the one recorded as applied. As `prisma migrate deploy` does, a
 * file whose line endings a checkout changed (CRLF and LF either way) still matches.
 */
export function matchesChecksum(sql: string, checksum: string): boolean {
  const lf = sql.replace(/\r\n/g, '\n');
  return [sql, lf, lf.replace(/\n/g, '\r\n')].some((variant) => sha256(variant) === checksum);
}

/** Lists migrations in apply order (directory names sort by their timestamp prefix). */
export function readMigrations(dir = MIGRATIONS_DIR): MigrationFile[] {
  return readdirSync(dir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(join(dir, d.name, 'migration.sql')))
    .map((d) => d.name)
    .sort()
    .map((name) => {
      const bytes = readFileSync(join(dir, name, 'migration.sql'));
      return { name, sql: bytes.toString('utf8'), checksum: createHash('sha256').update(bytes).digest('hex') };
    });
}

const CREATE_TABLE = `
CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
    "id"                    VARCHAR(36) PRIMARY KEY NOT NULL,
    "checksum"              VARCHAR(64) NOT NULL,
    "finished_at"           TIMESTAMPTZ,
    "migration_name"        VARCHAR(255) NOT NULL,
    "logs"                  TEXT,
    "rolled_back_at"        TIMESTAMPTZ,
    "started_at"            TIMESTAMPTZ NOT NULL DEFAULT now(),
    "applied_steps_count"   INTEGER NOT NULL DEFAULT 0
)`;

export class MigrationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MigrationError';
  }
}

export interface MigrateOptions {
  /**
   * How long one statement of a migration may wait for a lock (default 2 s). A migration that
   * waits for a table's lock behind a long transaction (an open psql, a slow query of the running
   * service) makes every later query on that table queue behind it, so a rolling deploy would stall
   * the live service for as long as it waits: it waits this long at most, rolls back, and tries again.
   */
  lockTimeoutMs?: number;
  /** How many times a migration is tried when it timed out on a lock (default 30). */
  attempts?: number;
  /** Wait between those tries (default 3 s, and up to a second more, so replicas do not line up). */
  retryDelayMs?: number;
  /**
   * Told each time the run waits on someone: another process migrating (the advisory lock, asked
   * again every `lockTimeoutMs`), or a migration's try that timed out on a table's lock and will be
   * tried again. The caller logs it, so a deploy that stalls says on whom while it waits.
   */
  onWait?: (wait: MigrationWait) => void;
}

export type MigrationWait =
  | { on: 'migration_lock'; waitedMs: number; heldBy: string }
  | { on: 'table_lock'; migration: string; attempt: number; attempts: number; heldBy: string };

/** One line for a log. */
export function describeWait(wait: MigrationWait): string {
  const who = wait.heldBy ? `held by ${wait.heldBy}` : 'holder not visible';
  return wait.on === 'migration_lock'
    ? `waited ${(wait.waitedMs / 1000).toFixed(1)} s for the migration lock (${who}): another process is migrating`
    : `migration ${wait.migration} timed out on a table lock (${who}), try ${wait.attempt} of ${wait.attempts}; trying again`;
}

const LOCK_NOT_AVAILABLE = '55P03';

/** Applies pending migrations; returns the names applied. Safe to run from several processes at once. */
export async function migrate(databaseUrl: string, dir = MIGRATIONS_DIR, opts: MigrateOptions = {}): Promise<string[]> {
  const lockTimeoutMs = opts.lockTimeoutMs ?? 2000;
  const attempts = opts.attempts ?? 30;
  const retryDelayMs = opts.retryDelayMs ?? 3000;
  const client = new Client({ connectionString: databaseUrl });
  await client.connect();
  const applied: string[] = [];
  try {
    await takeMigrationLock(client, lockTimeoutMs, opts.onWait);
    await client.query(CREATE_TABLE);
    const { rows } = await client.query<{
      migration_name: string;
      checksum: string;
      finished_at: Date | null;
      rolled_back_at: Date | null;
    }>('SELECT migration_name, checksum, finished_at, rolled_back_at FROM "_prisma_migrations"');
    const done = new Map(rows.filter((r) => r.rolled_back_at === null).map((r) => [r.migration_name, r]));

    for (const m of readMigrations(dir)) {
      const row = done.get(m.name);
      if (row?.finished_at === null) {
        throw new MigrationError(
          `migration ${m.name} failed earlier and was not resolved; fix the database, then run \`prisma migrate resolve\``,
        );
      }
      if (row) {
        if (!matchesChecksum(m.sql, row.checksum)) {
          throw new MigrationError(`migration ${m.name} was modified after it was applied (checksum differs)`);
        }
        continue;
      }
      for (let attempt = 1; ; attempt++) {
        const blockedBy = await applyOne(client, m, lockTimeoutMs);
        if (blockedBy === null) break;
        if (attempt >= attempts) {
          throw new MigrationError(
            `migration ${m.name} could not get its locks in ${attempts} tries of ${lockTimeoutMs} ms` +
              `${blockedBy ? ` (held by ${blockedBy})` : ''}; end that transaction, then start again`,
          );
        }
        opts.onWait?.({ on: 'table_lock', migration: m.name, attempt, attempts, heldBy: blockedBy });
        await new Promise((r) => setTimeout(r, retryDelayMs + Math.random() * Math.min(1000, retryDelayMs)));
      }
      applied.push(m.name);
    }
    return applied;
  } finally {
    // All of the session's: a lock granted just as its lock_timeout fired is held twice.
    await client.query('SELECT pg_advisory_unlock_all()').catch(() => undefined);
    await client.end();
  }
}

/**
 * Takes the advisory lock `prisma migrate deploy` takes, waiting for as long as another process
 * holds it (its migrations may wait on table locks themselves), and saying so every `stepMs`.
 */
async function takeMigrationLock(client: Client, stepMs: number, onWait: MigrateOptions['onWait']): Promise<void> {
  const since = Date.now();
  await client.query(`SET lock_timeout = ${Math.max(1, Math.round(stepMs))}`);
  for (;;) {
    try {
      await client.query('SELECT pg_advisory_lock($1)', [PRISMA_MIGRATE_LOCK]);
      break;
    } catch (err) {
      if ((err as { code?: string }).code !== LOCK_NOT_AVAILABLE) throw err;
      const heldBy = await sessionsNamed(
        client,
        `l.locktype = 'advisory' AND l.classid = 0 AND l.objid = $1 AND l.objsubid = 1`,
        PRISMA_MIGRATE_LOCK,
      );
      onWait?.({ on: 'migration_lock', waitedMs: Date.now() - since, heldBy });
    }
  }
  await client.query('RESET lock_timeout');
}

/**
 * Applies one migration in a transaction of its own (a failing script leaves neither schema changes
 * nor a row); null when applied, else who held the lock it timed out on ('' when that is not known).
 */
async function applyOne(client: Client, m: MigrationFile, lockTimeoutMs: number): Promise<string | null> {
  const id = randomUUID();
  await client.query('BEGIN');
  try {
    await client.query(`SET LOCAL lock_timeout = ${Math.max(1, Math.round(lockTimeoutMs))}`);
    await client.query(
      'INSERT INTO "_prisma_migrations" (id, checksum, migration_name, started_at, applied_steps_count) VALUES ($1, $2, $3, now(), 0)',
      [id, m.checksum, m.name],
    );
    await client.query(m.sql);
    await client.query('UPDATE "_prisma_migrations" SET finished_at = now(), applied_steps_count = 1 WHERE id = $1', [id]);
    await client.query('COMMIT');
    return null;
  } catch (err) {
    await client.query('ROLLBACK');
    if ((err as { code?: string }).code === LOCK_NOT_AVAILABLE) return lockHolders(client, lockTimeoutMs);
    throw new MigrationError(`migration ${m.name} failed: ${(err as Error).message}`);
  }
}

/**
 * Sessions holding locks on this database's tables in a transaction older than the lock timeout:
 * who the migration likely waited for, for the error (no query text). Another role's session shows
 * no transaction start or state to a role without pg_read_all_stats (the service's own role): it is
 * named whenever it holds a lock.
 */
function lockHolders(client: Client, lockTimeoutMs: number): Promise<string> {
  return sessionsNamed(
    client,
    `l.relation IS NOT NULL AND (a.xact_start IS NULL OR a.xact_start < now() - make_interval(secs => $1::float8 / 1000))`,
    lockTimeoutMs,
  );
}

/** Up to five other sessions holding a granted lock of this database that `where` ($1: `param`) picks, for a message. */
async function sessionsNamed(client: Client, where: string, param: number): Promise<string> {
  const { rows } = await client
    .query<{ who: string }>(
      `SELECT DISTINCT format('pid %s (%s, %s, %s)', a.pid, coalesce(nullif(a.application_name, ''), 'no name'), a.usename, coalesce(a.state, 'state not shown')) AS who
       FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
       WHERE l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
         AND l.pid <> pg_backend_pid() AND l.granted AND ${where}
       LIMIT 5`,
      [param],
    )
    .catch(() => ({ rows: [] as Array<{ who: string }> }));
  return rows.map((r) => r.who).join(', ');
}

/** Creates the database named in `databaseUrl` when it does not exist (dev and test only). */
export async function ensureDatabase(databaseUrl: string): Promise<void> {
  const url = new URL(databaseUrl);
  const name = decodeURIComponent(url.pathname.replace(/^\//, ''));
  if (!/^[A-Za-z0-9_]+$/.test(name)) throw new Error(`refusing to create database with name ${JSON.stringify(name)}`);
  url.pathname = '/postgres';
  const admin = new Client({ connectionString: url.toString() });
  await admin.connect();
  try {
    const { rowCount } = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (!rowCount) {
      await admin.query(`CREATE DATABASE "${name}"`).catch((err: { code?: string }) => {
        if (err.code !== '42P04') throw err; // created concurrently by another process
      });
    }
  } finally {
    await admin.end();
  }
}
