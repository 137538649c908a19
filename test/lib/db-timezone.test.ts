// Instants survive a Postgres whose default TimeZone is not UTC. The driver adapter sends a Date as
// UTC wall-clock text without an offset, which Postgres reads in the session's zone: the process's
// client sets its sessions to UTC (lib/db.ts). A scratch database whose default zone is New York.
import { PrismaPg } from '@prisma/adapter-pg';
import { Client } from 'pg';
import { createDb, PrismaClient } from '../../lib/db';
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
