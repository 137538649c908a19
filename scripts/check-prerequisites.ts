// `npm test` runs this first (pretest): what the suite needs from the machine, checked up front so a
// fresh machine gets one message naming each missing piece and how to install it, instead of
// dozens of failing tests ("executable doesn't exist"). `.ci/run` installs them on CI.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from 'pg';
import { goBinary, onPath, PROJECT_ROOT } from './temporal-cli';

export interface Missing {
  what: string;
  install: string;
}

export interface CheckOptions {
  env?: NodeJS.ProcessEnv;
  /** The checkout (its .tools/bin/temporal counts as a Temporal CLI). */
  root?: string;
  /** Where Go's tarball installs it. */
  goFallback?: string;
  nodeVersion?: string;
}

/** What the suite needs and this machine lacks (empty when nothing is missing). */
export async function missingPrerequisites(opts: CheckOptions = {}): Promise<Missing[]> {
  const env = opts.env ?? process.env;
  const missing: Missing[] = [];

  const [major, minor] = (opts.nodeVersion ?? process.versions.node).split('.').map(Number);
  if (major < 20 || (major === 20 && minor < 19))
    missing.push({
      what: `Node.js >= 20.19 (this is ${opts.nodeVersion ?? process.versions.node})`,
      install: 'https://nodejs.org or `nvm install 24`',
    });

  const pgUrl = env.TEST_POSTGRES_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';
  const pgProblem = await postgresProblem(pgUrl);
  if (pgProblem)
    missing.push({
      what: `PostgreSQL at ${redact(pgUrl)} (${pgProblem})`,
      install:
        '`sudo apt-get install -y postgresql && sudo service postgresql start` (user postgres, trust auth on 127.0.0.1), or set TEST_POSTGRES_URL',
    });

  const cli = env.TEMPORAL_CLI
    ? existsSync(env.TEMPORAL_CLI)
    : !!onPath('temporal', env) || existsSync(join(opts.root ?? PROJECT_ROOT, '.tools', 'bin', 'temporal'));
  if (!cli && !goBinary(env, opts.goFallback))
    missing.push({
      what: env.TEMPORAL_CLI
        ? `the Temporal CLI at TEMPORAL_CLI=${env.TEMPORAL_CLI}, and Go to build one`
        : 'a Temporal CLI (TEMPORAL_CLI, `temporal` on PATH or .tools/bin/temporal) or Go to build it',
      install: 'Go from https://go.dev/dl (the suite then builds the CLI once), or `brew install temporal` / https://temporal.download/cli',
    });

  const chromium = env.CHROMIUM_PATH ?? '/usr/bin/chromium';
  if (!existsSync(chromium))
    missing.push({
      what: `Chromium at ${chromium} (the dashboard's browser tests)`,
      install: '`sudo apt-get install -y chromium`, or set CHROMIUM_PATH',
    });

  const git = onPath('git', env);
  if (!git) missing.push({ what: 'git (the end-to-end tests clone and push)', install: '`sudo apt-get install -y git`' });
  else {
    const exec = spawnSync(git, ['--exec-path'], { env, encoding: 'utf8' });
    if (exec.status !== 0 || !existsSync(join(exec.stdout.trim(), 'git-http-backend')))
      missing.push({
        what: "git-http-backend (git's smart HTTP server, the end-to-end tests' git host)",
        install: '`sudo apt-get install -y git` (Debian ships it in git)',
      });
  }

  if (!onPath('openssl', env))
    missing.push({ what: 'openssl (the TLS tests make their certificates with it)', install: '`sudo apt-get install -y openssl`' });
  return missing;
}

async function postgresProblem(url: string): Promise<string | null> {
  const client = new Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return null;
  } catch (err) {
    return err instanceof Error ? err.message || (err as NodeJS.ErrnoException).code || 'unreachable' : String(err);
  } finally {
    await client.end().catch(() => undefined);
  }
}

const redact = (url: string) => url.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@');

/** One message for everything missing. */
export function formatMissing(missing: Missing[]): string {
  return [
    `npm test needs ${missing.length === 1 ? 'one thing' : `${missing.length} things`} this machine lacks:`,
    ...missing.map((m) => `  - ${m.what}\n      install: ${m.install}`),
  ].join('\n');
}

if (require.main === module) {
  missingPrerequisites().then(
    (missing) => {
      if (missing.length === 0) return;
      process.stderr.write(`${formatMissing(missing)}\n`);
      process.exit(1);
    },
    (err) => {
      process.stderr.write(`prerequisite check failed: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}
