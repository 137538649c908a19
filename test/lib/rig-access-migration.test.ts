// The rig_access migration on a database that already has rigs: every rig keeps what it had
// (`write`), except rigs on a lite GitHub installation, whose tokens only ever read and now say so;
// GitLab project tokens made so far are recorded as write_repository ones.
import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import { migrationScratch } from '../helpers/migration-scratch';

const db = migrationScratch('20261204400000_rig_access');

it('keeps existing rigs write, turns lite-installation rigs read, and marks existing project tokens write', async () => {
  // The migrations before this one, as a database deployed earlier has them.
  expect(await db.migrateBefore()).toBeGreaterThan(0);

  const client = new Client({ connectionString: db.url });
  await client.connect();
  try {
    const owner = randomUUID();
    const town = randomUUID();
    await client.query(`INSERT INTO owners (id) VALUES ($1)`, [owner]);
    await client.query(`INSERT INTO towns (id, name, owner_id, updated_at) VALUES ($1, 't', $2, now())`, [town, owner]);
    const integration = async (provider: string, appType: string | null, installation: number | null) => {
      const id = randomUUID();
      await client.query(
        `INSERT INTO platform_integrations (id, owner_id, provider, github_app_type, github_installation_id, updated_at)
         VALUES ($1, $2, $3::"Provider", $4::"GithubAppType", $5, now())`,
        [id, owner, provider, appType, installation],
      );
      return id;
    };
    const [standard, lite, gitlab] = [
      await integration('github', 'standard', 1),
      await integration('github', 'lite', 2),
      await integration('gitlab', null, null),
    ];
    const rig = async (rigName: string, integrationId: string | null) => {
      const id = randomUUID();
      await client.query(
        `INSERT INTO gastown_rigs (id, town_id, name, git_url, default_branch, platform_integration_id, repository_id, updated_at)
         VALUES ($1, $2, $3, 'https://git.example.com/a/b.git', 'main', $4, $5, now())`,
        [id, town, rigName, integrationId, integrationId ? 7 : null],
      );
      return id;
    };
    const rigs = {
      manual: await rig('manual', null),
      standard: await rig('standard', standard),
      lite: await rig('lite', lite),
      gitlab: await rig('gitlab', gitlab),
    };
    await client.query(
      `INSERT INTO rig_project_tokens (id, rig_id, integration_id, project_id, status, updated_at) VALUES ($1, $2, $3, 7, 'active', now())`,
      [randomUUID(), rigs.gitlab, gitlab],
    );

    expect(await db.migrateRest()).toEqual(db.rest());
    const { rows } = await client.query<{ name: string; access: string }>(
      'SELECT name, access::text AS access FROM gastown_rigs ORDER BY name',
    );
    expect(Object.fromEntries(rows.map((r) => [r.name, r.access]))).toEqual({
      gitlab: 'write',
      lite: 'read',
      manual: 'write',
      standard: 'write',
    });
    const tokens = await client.query<{ access: string }>('SELECT access::text AS access FROM rig_project_tokens');
    expect(tokens.rows).toEqual([{ access: 'write' }]);
  } finally {
    await client.end();
  }
});
