// The owners migration on a database that already has towns and integrations: every owner id in
// use becomes an owner row before the foreign keys that need them, so an upgrade keeps all rows.
import { randomBytes, randomUUID } from 'node:crypto';
import { cpSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { migrate, MIGRATIONS_DIR, readMigrations } from '../../lib/migrate';
import { testDatabaseUrl } from '../helpers/test-env';

const OWNERS_MIGRATION = '20261204100000_owners_and_sessions';
const name = `rc_owners_${randomBytes(4).toString('hex')}`;
const admin = new URL(testDatabaseUrl());
admin.pathname = '/postgres';
const scratch = new URL(testDatabaseUrl());
scratch.pathname = `/${name}`;

async function onAdmin(sql: string) {
  const a = new Client({ connectionString: admin.toString() });
  await a.connect();
  await a.query(sql);
  await a.end();
}

beforeAll(() => onAdmin(`CREATE DATABASE "${name}"`));
afterAll(() => onAdmin(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`));

it('creates an owner for every owner id already used by towns and integrations', async () => {
  // The migrations before this one, as a database deployed earlier has them.
  const before = mkdtempSync(join(tmpdir(), 'rc-migrations-'));
  const earlier = readMigrations().filter((m) => m.name < OWNERS_MIGRATION);
  expect(earlier.length).toBeGreaterThan(0);
  for (const m of earlier) cpSync(join(MIGRATIONS_DIR, m.name), join(before, m.name), { recursive: true });
  await migrate(scratch.toString(), before);

  const client = new Client({ connectionString: scratch.toString() });
  await client.connect();
  try {
    const [townOwner, sharedOwner, integrationOwner] = [randomUUID(), randomUUID(), randomUUID()];
    for (const owner of [townOwner, sharedOwner])
      await client.query(`INSERT INTO towns (id, name, owner_id, updated_at) VALUES ($1, 't', $2, now())`, [randomUUID(), owner]);
    for (const owner of [sharedOwner, integrationOwner])
      await client.query(`INSERT INTO platform_integrations (id, owner_id, provider, updated_at) VALUES ($1, $2, 'github', now())`, [
        randomUUID(),
        owner,
      ]);

    expect(await migrate(scratch.toString())).toEqual(
      readMigrations()
        .filter((m) => m.name >= OWNERS_MIGRATION)
        .map((m) => m.name),
    );
    const { rows } = await client.query('SELECT id FROM owners ORDER BY id');
    expect(rows.map((r) => r.id)).toEqual([townOwner, sharedOwner, integrationOwner].sort());
    // From now on an unknown owner id cannot be used without its owner row.
    await expect(
      client.query(`INSERT INTO towns (id, name, owner_id, updated_at) VALUES ($1, 't', $2, now())`, [randomUUID(), randomUUID()]),
    ).rejects.toThrow(/towns_owner_id_fkey/);
  } finally {
    await client.end();
  }
});
