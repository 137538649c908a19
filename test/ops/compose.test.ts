// The deployment files agree with the code: docker-compose.yml runs the roles with health checks
// and start order, hands the service only variables lib/config.ts knows (the required ones from
// .env), .env.example documents every variable and holds no secret, and the image runs as a
// non-root user with a health check.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { CONFIG_VARIABLES, ConfigError, loadConfig } from '../../lib/config';
import { SERVICE_PROCESS_ENV } from '../../lib/process-tuning';
import { SEARCH_ATTRIBUTES } from '../../workflows/search-attributes';
import { PROJECT_ROOT } from '../../scripts/temporal-cli';

interface Service {
  image?: string;
  build?: unknown;
  environment?: Record<string, string | number>;
  env_file?: string | string[];
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] | string };
  ports?: string[];
  volumes?: string[];
  entrypoint?: string[];
  stop_grace_period?: string;
}

const read = (file: string) => readFileSync(join(PROJECT_ROOT, file), 'utf8');
const composeText = read('docker-compose.yml');
const compose = parse(composeText, { merge: true }) as { services: Record<string, Service>; volumes: Record<string, unknown> };
const services = compose.services;
const envExample = read('.env.example');

/** Variables compose itself needs from .env (interpolation), which the service does not read. */
const COMPOSE_ONLY = ['POSTGRES_PASSWORD', 'REPO_CONNECT_DB_PASSWORD', 'TEMPORAL_DB_PASSWORD', 'BUILD_ID'];
const REQUIRED_FROM_ENV_FILE = ['ADMIN_API_TOKEN', 'SECRETS_KEY', 'PUBLIC_URL'];
/** What a user fills into the empty secrets of .env.example. */
const SECRETS = {
  POSTGRES_PASSWORD: 'p'.repeat(24),
  REPO_CONNECT_DB_PASSWORD: 'r'.repeat(24),
  TEMPORAL_DB_PASSWORD: 't'.repeat(24),
  ADMIN_API_TOKEN: '823d2d1a68900b530f19f06f27c753d7c45123ea20586d0ab12e4c87d6b244d1',
  SECRETS_KEY: Buffer.from(Array.from({ length: 32 }, (_, i) => (i * 37 + 11) % 256)).toString('base64'), // 32 distinct bytes: production refuses a made-up key
};
const databaseUrl = `postgresql://repo_connect:${SECRETS.REPO_CONNECT_DB_PASSWORD}@postgres:5432/repo_connect`;

/** Active `NAME=value` lines of .env.example. */
const exampleValues = Object.fromEntries(
  envExample
    .split('\n')
    .map((l) => /^([A-Z][A-Z0-9_]*)=(.*)$/.exec(l))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => [m[1], m[2]]),
);
/** Every name .env.example documents, set or commented out. */
const documented = new Set([...envExample.matchAll(/^#?\s*([A-Z][A-Z0-9_]*)=/gm)].map((m) => m[1]));

/** Compose's `${VAR}`, `${VAR:-default}` and `${VAR:?message}` interpolation over `vars`. */
function interpolate(value: string, vars: Record<string, string>): string {
  return value.replace(/\$\{([A-Z_][A-Z0-9_]*)(?:(:?)([-?])([^}]*))?\}/g, (_, name: string, colon?: string, op?: string, word?: string) => {
    const v = vars[name];
    const unset = v === undefined || (colon === ':' && v === '');
    return unset && op === '-' ? (word ?? '') : (v ?? '');
  });
}

it('runs postgres, a Temporal server on it with its UI and setup jobs, and the service as api and worker', () => {
  expect(Object.keys(services).sort()).toEqual([
    'api',
    'db-setup',
    'postgres',
    'temporal',
    'temporal-schema',
    'temporal-setup',
    'temporal-ui',
    'worker',
  ]);
  expect(services.api.environment?.ROLE).toBe('api');
  expect(services.api.environment?.PORT).toBe('8080');
  expect(services.api.ports).toEqual(['127.0.0.1:8080:8080']);
  expect(services.worker.environment?.ROLE).toBe('worker');
  expect(services.worker.environment?.WORKER_METRICS_PORT).toBe('9464');
  expect(services.worker.ports).toBeUndefined(); // scaled freely; scraped on the compose network
  for (const name of ['api', 'worker']) {
    expect([name, services[name].build, services[name].image]).toEqual([
      name,
      { context: '.', args: { BUILD_ID: '${BUILD_ID:-}' } },
      'repo-connect:${BUILD_ID:-local}',
    ]);
    // Longer than the worker's 20 s drain, or Docker kills it mid-activity.
    expect(parseInt(services[name].stop_grace_period ?? '10s', 10)).toBeGreaterThan(20);
  }
  expect(services.postgres.volumes).toContain('postgres-data:/var/lib/postgresql/data');
  expect(compose.volumes).toHaveProperty('postgres-data');
  expect(services.temporal.image).toMatch(/^temporalio\/server:\d+\.\d+\.\d+$/);
  expect(services.temporal.environment).toMatchObject({ DB: 'postgres12', POSTGRES_SEEDS: 'postgres' });
  expect(services['temporal-ui'].environment?.TEMPORAL_ADDRESS).toBe('temporal:7233');
  // Every published port stays on this machine.
  for (const [name, s] of Object.entries(services))
    for (const p of s.ports ?? []) expect([name, p]).toEqual([name, expect.stringMatching(/^127\.0\.0\.1:/)]);
});

it('gives each long-running service a health check and starts each only when what it needs is ready', () => {
  for (const name of ['postgres', 'temporal', 'api', 'worker'])
    expect([name, services[name].healthcheck?.test]).toEqual([name, expect.anything()]);
  expect(services.api.healthcheck?.test).toEqual(['CMD', 'node', 'scripts/healthcheck.mjs']);
  expect(existsSync(join(PROJECT_ROOT, 'scripts/healthcheck.mjs'))).toBe(true);
  const deps = (name: string) => Object.fromEntries(Object.entries(services[name].depends_on ?? {}).map(([k, v]) => [k, v.condition]));
  const ready = {
    postgres: 'service_healthy',
    temporal: 'service_healthy',
    'temporal-setup': 'service_completed_successfully',
    'db-setup': 'service_completed_successfully',
  };
  expect(deps('api')).toEqual(ready);
  expect(deps('worker')).toEqual(ready);
  expect(deps('temporal-schema')).toEqual({ postgres: 'service_healthy', 'db-setup': 'service_completed_successfully' });
  expect(deps('db-setup')).toEqual({ postgres: 'service_healthy' });
  expect(deps('temporal')).toEqual({ postgres: 'service_healthy', 'temporal-schema': 'service_completed_successfully' });
  expect(deps('temporal-setup')).toEqual({ temporal: 'service_healthy' });
  expect(deps('temporal-ui')).toEqual({ temporal: 'service_healthy' });
  // service_healthy only makes sense on a service that has a health check.
  for (const [name, s] of Object.entries(services)) {
    for (const [dep, { condition }] of Object.entries(s.depends_on ?? {})) {
      if (condition === 'service_healthy') expect([name, dep, services[dep].healthcheck]).toEqual([name, dep, expect.anything()]);
    }
  }
});

it('registers the namespace and every search attribute in a one-shot job', () => {
  const setup = services['temporal-setup'];
  expect(setup.image).toMatch(/^temporalio\/admin-tools:/);
  expect(setup.volumes).toContain('./deploy/temporal:/scripts:ro');
  expect(setup.entrypoint).toEqual(['/bin/sh', '/scripts/setup-namespace.sh']);
  const script = read('deploy/temporal/setup-namespace.sh');
  for (const name of Object.keys(SEARCH_ATTRIBUTES)) expect(script).toMatch(new RegExp(`\\b${name}\\b`));
  expect(script).toMatch(/--type Keyword/);
  expect(services['temporal-schema'].entrypoint).toEqual(['/bin/sh', '/scripts/setup-schema.sh']);
});

it('runs the service as a login role of its own, set up by a one-shot job with the script the tests run', () => {
  const setup = services['db-setup'];
  expect(setup.volumes).toEqual(['./deploy/postgres:/scripts:ro']);
  expect(setup.environment).toMatchObject({ PGHOST: 'postgres', PGUSER: 'postgres', PGDATABASE: 'repo_connect' });
  expect(setup.entrypoint?.join(' ')).toMatch(/psql .*-v app_role=repo_connect .*-f \/scripts\/app-role\.sql/);
  expect(existsSync(join(PROJECT_ROOT, 'deploy/postgres/app-role.sql'))).toBe(true);
  // The superuser's password reaches no service process: env_file passes all of .env, so the
  // service's `environment` (which wins) blanks it; the role's own travels in DATABASE_URL only.
  for (const name of ['api', 'worker']) {
    expect([name, services[name].env_file]).toEqual([name, '.env']);
    expect(services[name].environment).toMatchObject({ POSTGRES_PASSWORD: '', REPO_CONNECT_DB_PASSWORD: '', TEMPORAL_DB_PASSWORD: '' });
  }
});

it('runs Temporal and its schema job as a login role of their own, set up by the same job before them', () => {
  const setup = services['db-setup'];
  const entrypoint = setup.entrypoint?.join(' ') ?? '';
  expect(entrypoint).toMatch(/-v temporal_role=temporal .*-v temporal_db=temporal -v visibility_db=temporal_visibility/);
  expect(entrypoint).toMatch(/-f \/scripts\/app-role\.sql -f \/scripts\/temporal-role\.sql/);
  for (const f of ['temporal-role.sql', 'hand-over.sql']) expect(existsSync(join(PROJECT_ROOT, 'deploy/postgres', f))).toBe(true);
  for (const name of ['temporal', 'temporal-schema']) {
    expect([name, services[name].environment]).toEqual([
      name,
      expect.objectContaining({ POSTGRES_USER: 'temporal', POSTGRES_PWD: '${TEMPORAL_DB_PASSWORD:?set TEMPORAL_DB_PASSWORD in .env}' }),
    ]);
    expect(JSON.stringify(services[name].environment)).not.toContain('POSTGRES_PASSWORD');
  }
  // The role cannot create databases: the schema job only sets up and upgrades what the job created.
  expect(read('deploy/temporal/setup-schema.sh')).not.toMatch(/^\s*sql\b.*\bcreate\s*$/m);
});

it('hands the api and worker only variables lib/config.ts knows, the required ones from the env file', () => {
  const known = new Set(CONFIG_VARIABLES);
  for (const name of ['api', 'worker']) {
    const s = services[name];
    expect([name, s.env_file]).toEqual([name, '.env']);
    const set = Object.keys(s.environment ?? {});
    // Compose-only variables may appear only blanked (so that .env's values do not reach the process).
    expect([name, set.filter((v) => !known.has(v) && !(COMPOSE_ONLY.includes(v) && s.environment?.[v] === ''))]).toEqual([name, []]);
    // Set inline they would override .env, and a secret would sit in a committed file.
    expect([name, set.filter((v) => REQUIRED_FROM_ENV_FILE.includes(v))]).toEqual([name, []]);
    expect(s.environment?.NODE_ENV).toBe('production'); // so PUBLIC_URL is required and checked at boot
  }
  // What .env passes to the containers is config too, except what compose itself needs.
  expect(Object.keys(exampleValues).filter((v) => !known.has(v) && !COMPOSE_ONLY.includes(v))).toEqual([]);
  for (const v of REQUIRED_FROM_ENV_FILE) expect(Object.keys(exampleValues)).toContain(v);
  // Every variable compose interpolates is config or compose-only, and documented.
  const interpolated = [...new Set([...composeText.matchAll(/\$\{([A-Z_][A-Z0-9_]*)/g)].map((m) => m[1]))];
  expect(interpolated.filter((v) => !known.has(v) && !COMPOSE_ONLY.includes(v))).toEqual([]);
  for (const v of interpolated) expect(documented).toContain(v);
});

it('boots on the documented configuration once the secrets are filled in, and names them when not', () => {
  const env = (values: Record<string, string>) => {
    const environment = Object.fromEntries(
      Object.entries(services.api.environment ?? {}).map(([k, v]) => [k, interpolate(String(v), values)]),
    );
    return { ...values, ...environment }; // compose: `environment` wins over `env_file`
  };
  const config = loadConfig(env({ ...exampleValues, ...SECRETS }));
  expect(config).toMatchObject({ nodeEnv: 'production', role: 'api', host: '0.0.0.0', port: 8080, publicUrl: 'http://localhost:8080' });
  expect(config.databaseUrl).toBe(databaseUrl);
  expect(config.temporal.address).toBe('temporal:7233');
  // A cluster elsewhere is named in .env (compose's own value is only the default).
  expect(loadConfig(env({ ...exampleValues, ...SECRETS, TEMPORAL_ADDRESS: 'temporal.internal:7233' })).temporal.address).toBe(
    'temporal.internal:7233',
  );

  let error: unknown;
  try {
    loadConfig(env(exampleValues));
  } catch (err) {
    error = err;
  }
  expect(error).toBeInstanceOf(ConfigError);
  expect((error as ConfigError).problems.join('\n')).toMatch(/ADMIN_API_TOKEN[\s\S]*SECRETS_KEY/);
});

it('documents every configuration variable in .env.example and commits no secret', () => {
  expect(CONFIG_VARIABLES.filter((v) => !documented.has(v))).toEqual([]);
  for (const v of COMPOSE_ONLY) expect(documented).toContain(v);
  // Secret-named variables are empty; no key material or token-shaped value anywhere.
  for (const [name, value] of Object.entries(exampleValues)) {
    if (/TOKEN|SECRET|KEY|PASSWORD/.test(name)) expect([name, value]).toEqual([name, '']);
  }
  expect(envExample).not.toMatch(/-----BEGIN/);
  expect(envExample).not.toMatch(/\b(ghp|ghs|gho|ghu|github_pat|glpat|gloas)[-_][A-Za-z0-9_]{8,}/);
  for (const [name, value] of [...envExample.matchAll(/^#?\s*([A-Z][A-Z0-9_]*)=(\S*)/gm)].map((m) => [m[1], m[2]])) {
    const base64Key = /^[A-Za-z0-9+/]{43}=$/.test(value);
    const highEntropy = /^[A-Za-z0-9+/=_-]{20,}$/.test(value) && !/^https?:/.test(value);
    expect([name, base64Key || highEntropy]).toEqual([name, false]);
  }
  expect(read('.gitignore').split('\n')).toContain('.env');
});

it('builds an image that runs the entry point through tsx as a non-root user, with a health check', () => {
  const dockerfile = read('Dockerfile');
  expect(dockerfile.match(/^FROM /gm)?.length).toBe(2); // build and runtime stages
  expect(dockerfile).toMatch(/^RUN npm ci$/m);
  expect(dockerfile).toMatch(/npx tsx scripts\/prepare\.ts/);
  expect(dockerfile).toMatch(/npm prune --omit=dev/);
  expect(dockerfile).toMatch(/^USER node$/m);
  expect(dockerfile).toMatch(/^HEALTHCHECK .*scripts\/healthcheck\.mjs/m);
  expect(dockerfile).toMatch(/^CMD \["node", "--import", "tsx", "bin\/repo-connect\.ts"\]$/m);
  // The process settings npm start and the bench use (lib/process-tuning.ts), for every role.
  const envLines = dockerfile.match(/^ENV .*$/gm)!.join(' ');
  for (const [k, v] of Object.entries(SERVICE_PROCESS_ENV)) expect(envLines).toContain(` ${k}=${v}`);
  const ignored = read('.dockerignore').split('\n');
  for (const p of ['.env', '.git', 'node_modules', '.tools', '.local', 'prisma/generated']) expect(ignored).toContain(p);
  // Key files kept beside the compose file to be mounted (README) stay out of the image.
  for (const p of ['*.pem', '*.key', '*.crt', 'certs', 'secrets']) expect(ignored).toContain(p);
});

// Docker Compose itself, where its plugin is installed (no Docker engine is needed for `config`):
// the file validates, interpolates and resolves the way the checks above assume.
const composeCli = spawnSync('docker', ['compose', 'version'], { encoding: 'utf8' }).status === 0;
(composeCli ? it : it.skip)('passes `docker compose config` and resolves to a configuration the service boots on', () => {
  const dir = mkdtempSync(join(tmpdir(), 'compose-'));
  try {
    writeFileSync(join(dir, 'docker-compose.yml'), composeText);
    const run = () =>
      spawnSync('docker', ['compose', '--project-directory', dir, '-f', join(dir, 'docker-compose.yml'), 'config', '--format', 'json'], {
        encoding: 'utf8',
        cwd: dir,
      });

    // The example file as committed: refused, naming the missing password.
    writeFileSync(join(dir, '.env'), envExample);
    const refused = run();
    expect(refused.status).not.toBe(0);
    expect(refused.stderr).toMatch(/POSTGRES_PASSWORD|REPO_CONNECT_DB_PASSWORD/);

    writeFileSync(
      join(dir, '.env'),
      envExample.replace(/^([A-Z][A-Z0-9_]*)=$/gm, (line, name: string) =>
        name in SECRETS ? `${name}=${SECRETS[name as keyof typeof SECRETS]}` : line,
      ),
    );
    const ok = run();
    expect([ok.status, ok.stderr]).toEqual([0, '']);
    const resolved = JSON.parse(ok.stdout) as { services: Record<string, { environment?: Record<string, string | null> }> };
    expect(Object.keys(resolved.services).sort()).toEqual(Object.keys(services).sort());
    for (const role of ['api', 'worker']) {
      // compose merges env_file under environment: exactly what the container's process sees.
      const env = Object.fromEntries(Object.entries(resolved.services[role].environment ?? {}).map(([k, v]) => [k, v ?? '']));
      const config = loadConfig(env);
      expect(config).toMatchObject({ nodeEnv: 'production', role, publicUrl: 'http://localhost:8080' });
      expect(config.databaseUrl).toBe(databaseUrl);
      // What the container's process sees of the passwords: the role's inside DATABASE_URL only.
      expect([role, env.POSTGRES_PASSWORD, env.REPO_CONNECT_DB_PASSWORD]).toEqual([role, '', '']);
      expect(Object.values(env).filter((v) => v.includes(SECRETS.POSTGRES_PASSWORD))).toEqual([]);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
