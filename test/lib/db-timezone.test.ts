// Instants survive a Postgres whose default TimeZone is not UTC. The driver adapter sends a Date as
// UTC wall-clock text without an offset, which Postgres reads in the session's zone: the process's
// client sets its sessions to UTC (lib/db.ts). A scratch database whose default zone is New York.
import { PrismaPg } from '@prisma/adapter-pg';
import { Client } from 'pg';
import { createDb, PrismaClient, sessionSettings, sessionZoneProblem } from '../../lib/db';
import { migrationScratch } from '../helpers/migration-scratch';

const scratch = migrationScratch('00000000000000_none');

beforeAll(async () => {
  const c = new Client({ connectionString: scratch.url });
  await c.connect();
  await c.query(`ALTER DATABASE "${new URL(scratch.url).pathname.slice(1)}" SET TimeZone = 'America/New_York'`);
  await c.end();
});

const instant = new Date('2026-06-01T12:00:00.123Z');
/**
 * How far from `instant` Postgres holds the Date it was sent: its epoch, read as a number, so no text
 * conversion on the way back can hide a shift (the adapter reads timestamps back without their offset
 * too, so a round trip through a Date would cancel out while every comparison with now() is off).
 */
async function heldOffBy(db: PrismaClient) {
  try {
    const [row] = await db.$queryRaw<Array<{ epoch: number; tz: string }>>`
      SELECT extract(epoch FROM ${instant}::timestamptz)::float8 AS epoch, current_setting('TimeZone') AS tz`;
    return { tz: row.tz, offByHours: Math.round(((row.epoch * 1000 - instant.getTime()) / 3600_000) * 1000) / 1000 };
  } finally {
    await db.$disconnect();
  }
}

it('writes the instant it was given, in a session set to UTC', async () => {
  expect(await heldOffBy(createDb(scratch.url, { max: 1 }))).toEqual({ tz: 'UTC', offByHours: 0 });
});

it('(the control) a client on the database default zone moves it by that zone offset', async () => {
  const plain = new PrismaClient({ adapter: new PrismaPg({ connectionString: scratch.url, max: 1 }) });
  expect(await heldOffBy(plain)).toEqual({ tz: 'America/New_York', offByHours: 4 });
});

it("keeps DATABASE_URL's own options, with the time zone after them", async () => {
  const url = new URL(scratch.url);
  url.searchParams.set('options', '-c statement_timeout=12345');
  expect(sessionSettings(url.toString()).options).toBe('-c statement_timeout=12345 -c TimeZone=UTC');
  const db = createDb(url.toString(), { max: 1 });
  try {
    const [row] = await db.$queryRaw<Array<{ st: string; tz: string }>>`
      SELECT current_setting('statement_timeout') AS st, current_setting('TimeZone') AS tz`;
    expect(row).toEqual({ st: '12345ms', tz: 'UTC' });
  } finally {
    await db.$disconnect();
  }
  expect(sessionSettings('postgresql://u:p%40ss@db.internal:5432/rc')).toEqual({
    connectionString: 'postgresql://u:p%40ss@db.internal:5432/rc',
    options: '-c TimeZone=UTC',
  });
});

it('says when sessions do not run in UTC (what the boot refuses)', async () => {
  const ours = createDb(scratch.url, { max: 1 });
  const plain = new PrismaClient({ adapter: new PrismaPg({ connectionString: scratch.url, max: 1 }) });
  try {
    expect(await sessionZoneProblem(ours)).toBeNull();
    expect(await sessionZoneProblem(plain)).toBe('America/New_York');
  } finally {
    await ours.$disconnect();
    await plain.$disconnect();
  }
});
