// The owners migration on a database that already has towns and integrations: every owner id in
// use becomes an owner row before the foreign keys that need them, so an upgrade keeps all rows.
import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import { migrationScratch } from '../helpers/migration-scratch';

const db = migrationScratch('20261204100000_owners_and_sessions');

it('creates an owner for every owner id already used by towns and integrations', async () => {
  // The migrations before this one, as a database deployed earlier has them.
  expect(await db.migrateBefore()).toBeGreaterThan(0);

  const client = new Client({ connectionString: db.url });
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

    expect(await db.migrateRest()).toEqual(db.rest());
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
