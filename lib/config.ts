// The only reader of process.env for the service. Every variable is validated at once so a bad
// deployment learns everything that is wrong from one failed boot, not one variable per restart.
import { z } from 'zod';
import { normaliseBaseUrl } from './base-url';
import { parseContainerUrlAllow } from './container-url-policy';
import { SECRET_GENERATOR, weakSecretReason } from './secret-strength';
import { readPrivateKey } from './pem';
import { temporalTls, type TemporalTls } from './temporal-tls-config';

export type AppType = 'standard' | 'lite';

export interface GithubAppConfig {
  appType: AppType;
  appId: string;
  privateKey: string;
  slug: string;
}

/** A GitHub App's OAuth client: user authorization (sign-in) and user-verified installations. */
export interface GithubOAuthClient {
  clientId: string;
  clientSecret: string;
}

export interface Config {
  nodeEnv: 'development' | 'test' | 'production';
  role: 'all' | 'api' | 'worker';
  databaseUrl: string;
  temporal: {
    address: string;
    namespace: string;
    taskQueue: string;
    /** Where dispatches wait out refreshes closer than `worker.sleepingAfterSeconds`, in a worker that keeps them cached (the task queue's name + `-hot`). */
    hotTaskQueue: string;
    /** Where dispatches started by earlier builds sleep out long waits (the task queue's name + `-sleeping`); still polled for them. */
    sleepingTaskQueue: string;
    /** Worker Versioning: the worker's deployment, its build id when given, and whether routing follows versions. */
    deployment: { name: string; buildId?: string; versioning: boolean };
    /** TLS to the frontend (PEM text), or false for plaintext; on whenever any TLS variable or the API key is set. */
    tls: TemporalTls;
    /** Temporal Cloud API key. */
    apiKey?: string;
  };
  port: number;
  host: string;
  publicUrl: string;
  adminApiToken: string;
  /** Current key first; older keys only decrypt (rotation). */
  secretsKeys: Buffer[];
  github: {
    apiUrl: string;
    apps: Partial<Record<AppType, GithubAppConfig>>;
    /** The apps' OAuth clients; the standard one also serves "Sign in with GitHub". */
    oauthClients: Partial<Record<AppType, GithubOAuthClient>>;
    webhookSecret?: string;
  };
  gitlab: {
    url: string;
    /** Base URLs an integration may name (normalised): GITLAB_URL first, then GITLAB_ALLOWED_URLS. */
    allowedUrls: string[];
    clientId?: string;
    clientSecret?: string;
  };
  /** CONTAINER_URL_ALLOW as given (validated); lib/container-url-policy.ts parses it. */
  containerUrlAllow?: string;
  /** GitLab project access tokens (one per rig): when idle ones are revoked, refusals retried, tokens rotated. */
  projectTokens: { idleSeconds: number; retrySeconds: number; rotateSeconds: number };
  tokenRefreshMarginSeconds: number;
  refreshJitterMaxSeconds: number;
  pullRateLimitPerMinute: number;
  loginRateLimitPerMinute: number;
  providerTimeoutMs: number;
  databasePoolSize: number;
  /** V8's allocation-site pretenuring in a process that serves the API (README, "Performance"); off unless asked for. */
  apiAllocationSitePretenuring: boolean;
  worker: {
    /** Runs the hot task queue's worker keeps in memory (the main queue's too when `sleepingAfterSeconds` is 0). */
    maxCachedWorkflows: number;
    maxConcurrentActivities: number;
    heapGrowthPercent: number;
    /** The largest V8 semi-space of the workflow threads' isolates in MB (their young generation is twice this); 0 keeps V8's default. */
    workflowSemiSpaceMb: number;
    /**
     * A dispatch waits out a refresh at least this far off (or a wait without an end) on the main task queue,
     * whose worker keeps few runs in memory, and a closer one on the hot task queue; 0 keeps every dispatch
     * on the main queue, cached.
     */
    sleepingAfterSeconds: number;
    /** Runs the main task queue's worker (when `sleepingAfterSeconds` is above 0) and the sleeping queue's keep in memory. */
    sleepingCachedWorkflows: number;
  };
  workerMetricsPort: number;
  logLevel: string;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

const optionalString = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v.trim() === '' ? undefined : v));

const port = z.coerce.number().int().min(0).max(65535);

const base64Key = z
  .string()
  .refine(
    (v) => Buffer.from(v, 'base64').length === 32 && /^[A-Za-z0-9+/=_-]+$/.test(v),
    'must be 32 bytes encoded as base64 (generate one with: openssl rand -base64 32)',
  );

const httpUrl = z
  .string()
  .url()
  .refine((v) => /^https?:\/\//.test(v), 'must be an http(s) URL')
  .transform((v) => v.replace(/\/+$/, ''));

const schema = z.object({
  NODE_ENV: z.enum(['development', 'test', 'production']).default('development'),
  ROLE: z.enum(['all', 'api', 'worker']).default('all'),
  DATABASE_URL: z
    .string()
    .default('postgresql://postgres@127.0.0.1:5432/repo_connect')
    .refine((v) => /^postgres(ql)?:\/\//.test(v), 'must be a postgresql:// URL'),
  TEMPORAL_ADDRESS: z
    .string()
    .default('127.0.0.1:7233')
    .refine((v) => /^[^\s:/]+:\d+$/.test(v), 'must be host:port'),
  TEMPORAL_NAMESPACE: z.string().min(1).default('default'),
  TEMPORAL_TASK_QUEUE: z.string().min(1).default('git-tokens'),
  TEMPORAL_WORKER_VERSIONING: z.enum(['true', 'false'], { error: 'must be true or false' }).default('false'),
  // Temporal names a version `<deployment>.<build id>`, so neither may contain a dot.
  TEMPORAL_DEPLOYMENT_NAME: z
    .string()
    .default('repo-connect')
    .refine((v) => /^[A-Za-z0-9_-]{1,100}$/.test(v), 'must be 1-100 letters, digits, - or _'),
  TEMPORAL_TLS: z.enum(['true', 'false'], { error: 'must be true or false' }).optional(),
  TEMPORAL_TLS_CA: optionalString,
  TEMPORAL_TLS_CERT: optionalString,
  TEMPORAL_TLS_KEY: optionalString,
  TEMPORAL_TLS_SERVER_NAME: optionalString,
  TEMPORAL_API_KEY: optionalString,
  TEMPORAL_BUILD_ID: optionalString.refine(
    (v) => v === undefined || /^[A-Za-z0-9_+-]{1,200}$/.test(v),
    'must be 1-200 letters, digits, -, _ or +',
  ),
  PORT: port.default(8080),
  HOST: z.string().min(1).default('127.0.0.1'),
  PUBLIC_URL: httpUrl.optional(),
  ADMIN_API_TOKEN: z.string({ error: 'is required' }).min(16, 'must be at least 16 characters'),
  SECRETS_KEY: base64Key,
  SECRETS_KEY_PREVIOUS: optionalString,
  GITHUB_API_URL: httpUrl.default('https://api.github.com'),
  GITHUB_APP_ID: optionalString,
  GITHUB_APP_PRIVATE_KEY: optionalString,
  GITHUB_APP_SLUG: optionalString,
  GITHUB_LITE_APP_ID: optionalString,
  GITHUB_LITE_APP_PRIVATE_KEY: optionalString,
  GITHUB_LITE_APP_SLUG: optionalString,
  GITHUB_APP_CLIENT_ID: optionalString,
  GITHUB_APP_CLIENT_SECRET: optionalString,
  GITHUB_LITE_APP_CLIENT_ID: optionalString,
  GITHUB_LITE_APP_CLIENT_SECRET: optionalString,
  GITHUB_WEBHOOK_SECRET: optionalString,
  GITLAB_URL: httpUrl.default('https://gitlab.com'),
  GITLAB_ALLOWED_URLS: optionalString,
  GITLAB_CLIENT_ID: optionalString,
  GITLAB_CLIENT_SECRET: optionalString,
  CONTAINER_URL_ALLOW: optionalString,
  PROVIDER_HTTP_ALLOW: optionalString,
  GITLAB_PROJECT_TOKEN_IDLE_SECONDS: z.coerce.number().int().min(1).max(2_592_000).default(3600),
  GITLAB_PROJECT_TOKEN_RETRY_SECONDS: z.coerce.number().int().min(1).max(604_800).default(3600),
  GITLAB_PROJECT_TOKEN_ROTATE_SECONDS: z.coerce.number().int().min(5).max(86_400).default(86_400),
  TOKEN_REFRESH_MARGIN_SECONDS: z.coerce.number().int().min(1).max(3000).default(300),
  REFRESH_JITTER_MAX_SECONDS: z.coerce.number().min(0).max(600).default(60),
  PULL_RATE_LIMIT_PER_MINUTE: z.coerce.number().int().min(1).default(120),
  LOGIN_RATE_LIMIT_PER_MINUTE: z.coerce.number().int().min(1).default(20),
  PROVIDER_TIMEOUT_SECONDS: z.coerce.number().min(0.1).max(120).default(10),
  DATABASE_POOL_SIZE: z.coerce.number().int().min(1).max(200).default(10),
  API_ALLOCATION_SITE_PRETENURING: z.enum(['true', 'false'], { error: 'must be true or false' }).default('false'),
  WORKER_MAX_CACHED_WORKFLOWS: z.coerce.number().int().min(1).default(2000),
  WORKER_MAX_CONCURRENT_ACTIVITIES: z.coerce.number().int().min(1).default(100),
  WORKER_HEAP_GROWTH_PERCENT: z.coerce.number().int().min(0).max(400).default(10),
  WORKER_WORKFLOW_SEMI_SPACE_MB: z.coerce.number().int().min(0).max(64).default(2),
  WORKER_SLEEPING_AFTER_SECONDS: z.coerce.number().int().min(0).max(86_400).default(600),
  WORKER_SLEEPING_CACHED_WORKFLOWS: z.coerce.number().int().min(1).default(50),
  WORKER_METRICS_PORT: port.default(9464),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

/** Every environment variable the service reads (deployment files are checked against this list). */
export const CONFIG_VARIABLES: readonly string[] = Object.keys(schema.shape);

type Env = Record<string, string | undefined>;

/** Whether `host` (as URL.hostname gives it) is this machine: localhost, 127.0.0.0/8 or ::1. */
function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '[::1]' || /^127(\.\d{1,3}){3}$/.test(host);
}

/**
 * Provider base URLs that production would reach over plain http: the app's JWT, the OAuth client
 * secret and every token cross them, so only a provider on this machine, or one the operator names
 * (a GitLab inside the same cluster, a mesh that adds TLS on the way out), may be plain http.
 */
function productionProviderProblems(githubUrl: string, gitlabUrl: string, gitlabAllowed: string[], httpAllow: string[]): string[] {
  const plain = (raw: string) => {
    try {
      const url = new URL(raw);
      return url.protocol === 'http:' && !isLoopbackHost(url.hostname) && !httpAllow.includes(url.hostname.toLowerCase());
    } catch {
      return false; // reported by the URL's own check
    }
  };
  const why = 'must be https in production (plain http only to a loopback host, or to a host PROVIDER_HTTP_ALLOW names)';
  return [
    ...(plain(githubUrl) ? [`GITHUB_API_URL ${why}`] : []),
    ...(plain(gitlabUrl) ? [`GITLAB_URL ${why}`] : []),
    ...(gitlabAllowed.some(plain) ? [`GITLAB_ALLOWED_URLS ${why}`] : []),
  ];
}

/** Parses and validates an environment; throws ConfigError naming every bad or missing variable. */
export function loadConfig(env: Env = process.env): Config {
  const problems: string[] = [];
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const name = String(issue.path[0]);
      const message = env[name] === undefined && issue.code === 'invalid_type' ? 'is required' : issue.message;
      problems.push(`${name} ${message}`);
    }
    throw new ConfigError(problems);
  }
  const e = parsed.data;

  const apps: Config['github']['apps'] = {};
  const appVars = {
    standard: ['GITHUB_APP_ID', 'GITHUB_APP_PRIVATE_KEY', 'GITHUB_APP_SLUG'],
    lite: ['GITHUB_LITE_APP_ID', 'GITHUB_LITE_APP_PRIVATE_KEY', 'GITHUB_LITE_APP_SLUG'],
  } as const;
  for (const appType of ['standard', 'lite'] as const) {
    const [idVar, keyVar, slugVar] = appVars[appType];
    const [appId, key, slug] = [e[idVar], e[keyVar], e[slugVar]];
    if (appId === undefined && key === undefined && slug === undefined) continue;
    const missing = appVars[appType].filter((v) => e[v] === undefined);
    for (const v of missing) problems.push(`${v} is required when any of ${appVars[appType].join(', ')} is set`);
    if (appId !== undefined && !/^\d+$/.test(appId)) problems.push(`${idVar} must be the numeric app id`);
    let privateKey: string | undefined;
    if (key !== undefined) {
      try {
        privateKey = readPrivateKey(key);
      } catch (err) {
        problems.push(
          `${keyVar} ${err instanceof Error && err.message.startsWith('is ') ? err.message : 'is not a valid PEM private key'}`,
        );
      }
    }
    if (appId && privateKey && slug) apps[appType] = { appType, appId, privateKey, slug };
  }

  // A refresh asks for a token that outlives its lead (the margin and the jitter, at most 10 % of the
  // token's life): a project token rotated for less than that is never enough, and every mint would
  // rotate it again (and signal the rig's other dispatches, which rotate it again).
  const rotate = e.GITLAB_PROJECT_TOKEN_ROTATE_SECONDS;
  const lead = e.TOKEN_REFRESH_MARGIN_SECONDS + Math.min(e.REFRESH_JITTER_MAX_SECONDS, rotate / 10) + 1;
  if (rotate <= lead) {
    problems.push(
      `GITLAB_PROJECT_TOKEN_ROTATE_SECONDS must be more than TOKEN_REFRESH_MARGIN_SECONDS plus the refresh jitter and a second (${lead} s here), or every mint would rotate the project token`,
    );
  }

  if ((e.GITLAB_CLIENT_ID === undefined) !== (e.GITLAB_CLIENT_SECRET === undefined)) {
    problems.push('GITLAB_CLIENT_ID and GITLAB_CLIENT_SECRET must be set together');
  }
  const oauthClients: Config['github']['oauthClients'] = {};
  for (const [appType, prefix] of [
    ['standard', 'GITHUB_APP'],
    ['lite', 'GITHUB_LITE_APP'],
  ] as const) {
    const [clientId, clientSecret] = [e[`${prefix}_CLIENT_ID`], e[`${prefix}_CLIENT_SECRET`]];
    if ((clientId === undefined) !== (clientSecret === undefined)) {
      problems.push(`${prefix}_CLIENT_ID and ${prefix}_CLIENT_SECRET must be set together`);
    } else if (clientId !== undefined && clientSecret !== undefined) {
      oauthClients[appType] = { clientId, clientSecret };
    }
  }

  // Integrations may name only these GitLabs: the OAuth client secret is sent to whichever one a
  // grant refreshes against.
  const gitlabUrls: string[] = [];
  const allowedEntries = (e.GITLAB_ALLOWED_URLS ?? '').split(',').map((u) => u.trim());
  for (const [name, entry] of [['GITLAB_URL', e.GITLAB_URL], ...allowedEntries.filter(Boolean).map((u) => ['GITLAB_ALLOWED_URLS', u])]) {
    try {
      gitlabUrls.push(normaliseBaseUrl(entry));
    } catch (err) {
      // Credentials in a URL are masked: boot errors are logged.
      const what = name === 'GITLAB_URL' ? '' : ` (a comma-separated list of http(s) base URLs): ${entry.replace(/\/\/[^/@]*@/, '//***@')}`;
      problems.push(`${name}${what} ${(err as Error).message}`);
    }
  }

  problems.push(...parseContainerUrlAllow(e.CONTAINER_URL_ALLOW).problems);

  const previous = (e.SECRETS_KEY_PREVIOUS ?? '')
    .split(',')
    .map((k) => k.trim())
    .filter(Boolean);
  for (const k of previous) {
    if (!base64Key.safeParse(k).success) problems.push('SECRETS_KEY_PREVIOUS must be a comma-separated list of 32-byte base64 keys');
  }
  // The one credential for every route: in production it must be a generated secret.
  const weakAdmin = e.NODE_ENV === 'production' ? weakSecretReason(e.ADMIN_API_TOKEN) : null;
  if (weakAdmin) problems.push(`ADMIN_API_TOKEN ${weakAdmin} in production (generate one with: ${SECRET_GENERATOR})`);
  if (e.NODE_ENV === 'production') {
    const httpAllow = (e.PROVIDER_HTTP_ALLOW ?? '')
      .split(',')
      .map((h) => h.trim().toLowerCase())
      .filter(Boolean);
    problems.push(...productionProviderProblems(e.GITHUB_API_URL, e.GITLAB_URL, allowedEntries.filter(Boolean), httpAllow));
    // 32 random bytes have about 30 distinct values; fewer than 16 is a made-up key, not a generated one.
    if (new Set(Buffer.from(e.SECRETS_KEY, 'base64')).size < 16) {
      problems.push(
        `SECRETS_KEY must be random in production (it has fewer than 16 distinct bytes; generate one with: ${SECRET_GENERATOR})`,
      );
    }
  }
  const tls = temporalTls(e, problems);
  if (e.NODE_ENV === 'production' && e.PUBLIC_URL === undefined) {
    problems.push('PUBLIC_URL is required in production (OAuth redirect URIs are built from it)');
  }
  if (problems.length > 0) throw new ConfigError(problems);

  return {
    nodeEnv: e.NODE_ENV,
    role: e.ROLE,
    databaseUrl: e.DATABASE_URL,
    temporal: {
      address: e.TEMPORAL_ADDRESS,
      namespace: e.TEMPORAL_NAMESPACE,
      taskQueue: e.TEMPORAL_TASK_QUEUE,
      hotTaskQueue: `${e.TEMPORAL_TASK_QUEUE}-hot`,
      sleepingTaskQueue: `${e.TEMPORAL_TASK_QUEUE}-sleeping`,
      deployment: { name: e.TEMPORAL_DEPLOYMENT_NAME, buildId: e.TEMPORAL_BUILD_ID, versioning: e.TEMPORAL_WORKER_VERSIONING === 'true' },
      tls,
      apiKey: e.TEMPORAL_API_KEY,
    },
    port: e.PORT,
    host: e.HOST,
    publicUrl: e.PUBLIC_URL ?? `http://${e.HOST.includes(':') ? `[${e.HOST}]` : e.HOST}:${e.PORT}`,
    adminApiToken: e.ADMIN_API_TOKEN,
    secretsKeys: [e.SECRETS_KEY, ...previous].map((k) => Buffer.from(k, 'base64')),
    github: { apiUrl: e.GITHUB_API_URL, apps, oauthClients, webhookSecret: e.GITHUB_WEBHOOK_SECRET },
    gitlab: {
      url: e.GITLAB_URL,
      allowedUrls: [...new Set(gitlabUrls)],
      clientId: e.GITLAB_CLIENT_ID,
      clientSecret: e.GITLAB_CLIENT_SECRET,
    },
    containerUrlAllow: e.CONTAINER_URL_ALLOW,
    projectTokens: {
      idleSeconds: e.GITLAB_PROJECT_TOKEN_IDLE_SECONDS,
      retrySeconds: e.GITLAB_PROJECT_TOKEN_RETRY_SECONDS,
      rotateSeconds: e.GITLAB_PROJECT_TOKEN_ROTATE_SECONDS,
    },
    tokenRefreshMarginSeconds: e.TOKEN_REFRESH_MARGIN_SECONDS,
    refreshJitterMaxSeconds: e.REFRESH_JITTER_MAX_SECONDS,
    pullRateLimitPerMinute: e.PULL_RATE_LIMIT_PER_MINUTE,
    loginRateLimitPerMinute: e.LOGIN_RATE_LIMIT_PER_MINUTE,
    providerTimeoutMs: Math.round(e.PROVIDER_TIMEOUT_SECONDS * 1000),
    databasePoolSize: e.DATABASE_POOL_SIZE,
    apiAllocationSitePretenuring: e.API_ALLOCATION_SITE_PRETENURING === 'true',
    worker: {
      maxCachedWorkflows: e.WORKER_MAX_CACHED_WORKFLOWS,
      maxConcurrentActivities: e.WORKER_MAX_CONCURRENT_ACTIVITIES,
      heapGrowthPercent: e.WORKER_HEAP_GROWTH_PERCENT,
      workflowSemiSpaceMb: e.WORKER_WORKFLOW_SEMI_SPACE_MB,
      sleepingAfterSeconds: e.WORKER_SLEEPING_AFTER_SECONDS,
      sleepingCachedWorkflows: e.WORKER_SLEEPING_CACHED_WORKFLOWS,
    },
    workerMetricsPort: e.WORKER_METRICS_PORT,
    logLevel: e.LOG_LEVEL,
  };
}
