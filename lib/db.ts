// Prisma client construction: one per process, built by the composition root and passed down.
import { PrismaPg } from '@prisma/adapter-pg';
import { Prisma, PrismaClient } from '../prisma/generated/client';

export { Prisma, PrismaClient };
export type Db = PrismaClient;

/**
 * The connection string and startup options for the service's sessions: they run in UTC. The
 * adapter sends a Date as UTC wall-clock text with no offset, which Postgres reads in the session's
 * TimeZone, so on a server whose default zone is not UTC every instant written would move by that
 * zone's offset. An `options` parameter of DATABASE_URL is kept, with the time zone after it (node-
 * postgres would otherwise let the URL's replace it whole); PGOPTIONS is not read.
 */
export function sessionSettings(databaseUrl: string): { connectionString: string; options: string } {
  const utc = '-c TimeZone=UTC';
  if (!/[?&]options=/.test(databaseUrl)) return { connectionString: databaseUrl, options: utc };
  const url = new URL(databaseUrl);
  const own = url.searchParams.get('options');
  url.searchParams.delete('options');
  return { connectionString: url.toString(), options: [own, utc].filter(Boolean).join(' ') };
}

/**
 * Null when the client's sessions run in UTC, else what they run in: a pooler that drops startup
 * options (PgBouncer's ignore_startup_parameters) leaves the server's default zone, and every instant
 * written would move by its offset. Checked at boot.
 */
export async function sessionZoneProblem(db: Pick<PrismaClient, '$queryRaw'>): Promise<string | null> {
  const [{ tz }] = await db.$queryRaw<Array<{ tz: string }>>`SELECT current_setting('TimeZone') AS tz`;
  return tz === 'UTC' || tz === 'Etc/UTC' ? null : tz;
}

/** Builds the process's Prisma client on the node-postgres driver adapter (no native engine), its sessions in UTC. */
export function createDb(databaseUrl: string, options: { max?: number } = {}): PrismaClient {
  const adapter = new PrismaPg({ ...sessionSettings(databaseUrl), max: options.max ?? 10 });
  return new PrismaClient({ adapter });
}

/** True when `err` is Prisma's unique-constraint violation. */
export function isUniqueViolation(err: unknown): boolean {
  return err instanceof Prisma.PrismaClientKnownRequestError && err.code === 'P2002';
}

/** True when `err` is a foreign key violation: the row it points to is gone (deleted meanwhile). */
export function isForeignKeyViolation(err: unknown): boolean {
  return err instanceof Prisma.PrismaClientKnownRequestError && err.code === 'P2003';
}

/** What marks a kind of database error: Prisma's codes, the driver adapter's kinds, Postgres's SQLSTATEs. */
interface DbErrorKind {
  prismaCodes: Set<string>;
  adapterKinds: Set<string>;
  sqlstates: RegExp;
  /** Anything else that marks it. */
  other?: (err: object) => boolean;
}

/** True when `err`, or an error it wraps (`cause`, up to 5 deep), is of `kind`. */
function isDbError(err: unknown, kind: DbErrorKind, depth = 0): boolean {
  if (typeof err !== 'object' || err === null || depth > 5) return false;
  if (kind.other?.(err)) return true;
  const { code, meta, cause } = err as {
    code?: unknown;
    meta?: { driverAdapterError?: { cause?: { kind?: unknown; originalCode?: unknown } } };
    cause?: unknown;
  };
  if (err instanceof Prisma.PrismaClientKnownRequestError) {
    if (typeof code === 'string' && kind.prismaCodes.has(code)) return true;
    const adapter = meta?.driverAdapterError?.cause;
    return !!adapter && (kind.adapterKinds.has(String(adapter.kind)) || kind.sqlstates.test(String(adapter.originalCode ?? '')));
  }
  // The pg driver's own: a server error with its SQLSTATE (it has `severity`).
  if ('severity' in err && typeof code === 'string' && kind.sqlstates.test(code)) return true;
  return cause !== undefined && cause !== err && isDbError(cause, kind, depth + 1);
}

// Prisma's "cannot reach / lost / timed out / pool timeout" codes, the driver adapter's kinds for the
// same, and Postgres's own (shutting down or starting up, 57P0x; connection exceptions, 08xxx).
const UNAVAILABLE: DbErrorKind = {
  prismaCodes: new Set(['P1001', 'P1002', 'P1008', 'P1017', 'P2024']),
  adapterKinds: new Set(['DatabaseNotReachable', 'ConnectionClosed', 'SocketTimeout', 'TooManyConnections', 'TlsConnectionError']),
  sqlstates: /^(57P0[1-3]|08\d{3}|53300)$/,
  // Prisma failing to start, and what the pg driver throws, without a code, when a connection ends
  // or cannot be had in time.
  other: (err) =>
    err instanceof Prisma.PrismaClientInitializationError ||
    (err instanceof Error &&
      err.constructor === Error &&
      /^(Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error)/.test(err.message)),
};

/**
 * True when `err` says Postgres could not be reached or went away (not that a statement was wrong).
 * Bare socket codes (ECONNRESET...) are not enough: a client hanging up mid-request has them too.
 */
export function isDatabaseUnavailable(err: unknown): boolean {
  return isDbError(err, UNAVAILABLE);
}

// A transaction that lost to another (deadlock, serialization: P2034, the adapter's
// TransactionWriteConflict) or waited too long for a lock, a statement or its own transaction
// (lock_timeout 55P03, statement_timeout 57014; of Prisma's transaction errors, P2028, only a
// connection not had in time or a transaction that expired: its others are mistakes that repeat).
const CONFLICT: DbErrorKind = {
  prismaCodes: new Set(['P2034']),
  adapterKinds: new Set(['TransactionWriteConflict']),
  sqlstates: /^(40P01|40001|55P03|57014)$/,
  other: (err) =>
    err instanceof Prisma.PrismaClientKnownRequestError &&
    err.code === 'P2028' &&
    /Unable to start a transaction in the given time|expired transaction|Transaction already closed/i.test(err.message),
};

/**
 * True when `err` says a transaction was rolled back for a passing reason (it lost a deadlock or a
 * serialization conflict, or timed out on a lock): the same work may succeed when tried again.
 */
export function isTransactionConflict(err: unknown): boolean {
  return isDbError(err, CONFLICT);
}

/** True when `err` is Prisma's record-not-found. */
export function isNotFound(err: unknown): boolean {
  return err instanceof Prisma.PrismaClientKnownRequestError && err.code === 'P2025';
}
