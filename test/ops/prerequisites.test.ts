// `npm test` checks the machine first (scripts/check-prerequisites.ts): each missing piece is named
// once, with the command that installs it, in one message; nothing is reported when all is there.
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatMissing, missingPrerequisites, type CheckOptions } from '../../scripts/check-prerequisites';
import { freePort, onPath, PROJECT_ROOT } from '../../scripts/temporal-cli';

const tmp = () => mkdtempSync(join(tmpdir(), 'rc-prereq-'));

/** A PATH with only `commands` on it (links to this machine's own). */
function pathWith(...commands: string[]): string {
  const dir = tmp();
  for (const c of commands) symlinkSync(onPath(c, process.env)!, join(dir, c));
  return dir;
}

/** Everything there: the real Postgres, a Temporal CLI, Chromium, git with git-http-backend, openssl. */
function complete(): CheckOptions & { env: NodeJS.ProcessEnv } {
  const cli = join(tmp(), 'temporal');
  writeFileSync(cli, '#!/bin/sh\n');
  chmodSync(cli, 0o755);
  return {
    env: { PATH: pathWith('git', 'openssl'), TEMPORAL_CLI: cli, CHROMIUM_PATH: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium' },
    root: tmp(),
    goFallback: '/nonexistent/go',
    nodeVersion: '20.19.0',
  };
}

const whats = async (opts: CheckOptions) => (await missingPrerequisites(opts)).map((m) => m.what);

it('reports nothing when everything is there', async () => {
  expect(await missingPrerequisites(complete())).toEqual([]);
  expect(await missingPrerequisites()).toEqual([]); // this machine, as npm test sees it
});

it('names each missing piece alone', async () => {
  const base = complete();
  const closed = `postgresql://postgres@127.0.0.1:${await freePort()}/postgres`;
  expect(await whats({ ...base, nodeVersion: '20.11.1' })).toEqual(['Node.js >= 20.19 (this is 20.11.1)']);
  expect(await whats({ ...base, env: { ...base.env, TEST_POSTGRES_URL: closed } })).toEqual([
    expect.stringMatching(new RegExp(`^PostgreSQL at ${closed.replace(/[/.]/g, '\\$&')} \\(.*ECONNREFUSED.*\\)$`)),
  ]);
  expect(await whats({ ...base, env: { ...base.env, TEMPORAL_CLI: undefined } })).toEqual([
    'a Temporal CLI (TEMPORAL_CLI, `temporal` on PATH or .tools/bin/temporal) or Go to build it',
  ]);
  expect(await whats({ ...base, env: { ...base.env, CHROMIUM_PATH: '/nonexistent/chromium' } })).toEqual([
    "Chromium at /nonexistent/chromium (the dashboard's browser tests)",
  ]);
  expect(await whats({ ...base, env: { ...base.env, PATH: pathWith('openssl') } })).toEqual(['git (the end-to-end tests clone and push)']);
  expect(await whats({ ...base, env: { ...base.env, PATH: pathWith('git') } })).toEqual([
    'openssl (the TLS tests make their certificates with it)',
  ]);

  // A git without its smart HTTP server (Debian's git-core split, a minimal image).
  const bin = pathWith('openssl');
  const execPath = tmp();
  writeFileSync(join(bin, 'git'), `#!/bin/sh\necho ${execPath}\n`);
  chmodSync(join(bin, 'git'), 0o755);
  expect(await whats({ ...base, env: { ...base.env, PATH: bin } })).toEqual([
    "git-http-backend (git's smart HTTP server, the end-to-end tests' git host)",
  ]);
});

it('finds the Temporal CLI on PATH or in .tools/bin, or Go to build it', async () => {
  const base = { ...complete(), env: { ...complete().env, TEMPORAL_CLI: undefined } };
  const root = tmp();
  mkdirSync(join(root, '.tools', 'bin'), { recursive: true });
  writeFileSync(join(root, '.tools', 'bin', 'temporal'), '');
  expect(await whats({ ...base, root })).toEqual([]);
  const go = join(tmp(), 'go');
  writeFileSync(go, '');
  expect(await whats({ ...base, goFallback: go })).toEqual([]);
});

it('stops npm test with one message naming each missing piece and how to install it', () => {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(PROJECT_ROOT, 'scripts', 'check-prerequisites.ts')], {
    cwd: PROJECT_ROOT,
    env: {
      PATH: pathWith(),
      TEMPORAL_CLI: complete().env.TEMPORAL_CLI,
      CHROMIUM_PATH: '/nonexistent/chromium',
      TEST_POSTGRES_URL: 'postgresql://postgres@127.0.0.1:1/postgres',
    },
    encoding: 'utf8',
  });
  expect(r.status).toBe(1);
  expect(r.stderr).toMatch(/^npm test needs 4 things this machine lacks:\n/);
  for (const install of [
    'apt-get install -y postgresql',
    'apt-get install -y chromium',
    'apt-get install -y git',
    'apt-get install -y openssl',
  ])
    expect(r.stderr).toContain(install);
  expect(r.stderr.match(/^ {2}- /gm)).toHaveLength(4);
  expect(formatMissing([{ what: 'x', install: 'y' }])).toBe('npm test needs one thing this machine lacks:\n  - x\n      install: y');
});
