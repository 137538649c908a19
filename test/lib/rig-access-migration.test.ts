// The rig_access migration on a database that already has rigs: every rig keeps what it had
// (`write`), except rigs on a lite GitHub installation, whose tokens only ever read and now say so;
// GitLab project tokens made so far are recorded as write_repository ones.
import { randomBytes, randomUUID } from 'node:crypto';
import { cpSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { migrate, MIGRATIONS_DIR, readMigrations } from '../../lib/migrate';
import { testDatabaseUrl } from '../helpers/test-env';

const ACCESS_MIGRATION = '20261204400000_rig_access';
const name = `rc_access_${randomBytes(4).toString('hex')}`;
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

it('keeps existing rigs write, turns lite-installation rigs read, and marks existing project tokens write', async () => {
  const before = mkdtempSync(join(tmpdir(), 'rc-migrations-'));
  const earlier = readMigrations().filter((m) => m.name < ACCESS_MIGRATION);
  for (const m of earlier) cpSync(join(MIGRATIONS_DIR, m.name), join(before, m.name), { recursive: true });
  await migrate(scratch.toString(), before);

  const client = new Client({ connectionString: scratch.toString() });
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

    expect(await migrate(scratch.toString())).toEqual(
      readMigrations()
        .filter((m) => m.name >= ACCESS_MIGRATION)
        .map((m) => m.name),
    );
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
