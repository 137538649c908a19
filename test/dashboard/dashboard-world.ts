// A fixed public URL and fake GitHub/GitLab wired for the browser flows: the GitHub apps' setup
// URL and the GitLab application's redirect URI point at the service under test.
import { FakeGitHub, type FakeGithubApp } from '../fakes/github';
import { FakeGitLab } from '../fakes/gitlab';
import { freePort } from '../../scripts/temporal-cli';
import { ADMIN, startHarness, type Harness, type HarnessOptions } from '../helpers/harness';

export const WEBHOOK_SECRET = 'test-webhook-secret-0123';
export const GITLAB_CLIENT = { clientId: 'rc-gitlab-client', clientSecret: 'rc-gitlab-secret-0123' };

export interface DashboardWorld {
  gh: FakeGitHub;
  gl: FakeGitLab;
  standard: FakeGithubApp;
  lite: FakeGithubApp;
  publicUrl: string;
  env: Record<string, string>;
  close(): Promise<void>;
}

/** Fakes plus the environment that points the service at them, on a port chosen up front. */
export async function dashboardWorld(opts: { lite?: boolean; gitlab?: boolean; liteOAuth?: boolean } = {}): Promise<DashboardWorld> {
  const port = await freePort();
  const publicUrl = `http://127.0.0.1:${port}`;
  const gh = await FakeGitHub.start();
  const gl = await FakeGitLab.start();
  const setupUrl = `${publicUrl}/integrations/github/setup`;
  // The standard app as the README sets it up: "Sign in with GitHub" on its callback URL, and user
  // authorization requested during installation (installs come back there with a code). The lite
  // app uses its setup URL, and asks who installs only when its OAuth client is configured too.
  const standard = await gh.createApp({
    slug: 'rc-standard',
    setupUrl,
    callbackUrls: [`${publicUrl}/login/github/callback`],
    requestOAuthOnInstall: true,
  });
  const lite = await gh.createApp({
    slug: 'rc-lite',
    setupUrl,
    permissions: { contents: 'read', metadata: 'read' },
    callbackUrls: [setupUrl],
    requestOAuthOnInstall: opts.liteOAuth ?? false,
  });
  gl.registerApplication({
    ...GITLAB_CLIENT,
    redirectUri: `${publicUrl}/integrations/gitlab/callback\n${publicUrl}/login/gitlab/callback`,
  });
  const env: Record<string, string> = {
    PORT: String(port),
    PUBLIC_URL: publicUrl,
    GITHUB_API_URL: gh.apiUrl,
    GITHUB_APP_ID: standard.appId,
    GITHUB_APP_PRIVATE_KEY: standard.privateKeyPem,
    GITHUB_APP_SLUG: standard.slug,
    GITHUB_APP_CLIENT_ID: standard.clientId,
    GITHUB_APP_CLIENT_SECRET: standard.clientSecret,
    GITHUB_WEBHOOK_SECRET: WEBHOOK_SECRET,
  };
  if (opts.lite !== false)
    Object.assign(env, {
      GITHUB_LITE_APP_ID: lite.appId,
      GITHUB_LITE_APP_PRIVATE_KEY: lite.privateKeyPem,
      GITHUB_LITE_APP_SLUG: lite.slug,
      ...(opts.liteOAuth ? { GITHUB_LITE_APP_CLIENT_ID: lite.clientId, GITHUB_LITE_APP_CLIENT_SECRET: lite.clientSecret } : {}),
    });
  if (opts.gitlab !== false)
    Object.assign(env, {
      GITLAB_URL: gl.baseUrl,
      GITLAB_CLIENT_ID: GITLAB_CLIENT.clientId,
      GITLAB_CLIENT_SECRET: GITLAB_CLIENT.clientSecret,
    });
  return {
    gh,
    gl,
    standard,
    lite,
    publicUrl,
    env,
    async close() {
      await gh.close();
      await gl.close();
    },
  };
}

/** The service over `world`. */
export function startDashboard(world: DashboardWorld, opts: HarnessOptions = {}): Promise<Harness> {
  return startHarness({ ...opts, env: { ...world.env, ...opts.env } });
}

/** A raw request (no redirects followed) with the admin bearer unless `auth` is false. */
export async function raw(h: Harness, path: string, init: RequestInit & { auth?: boolean } = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  if (init.auth !== false && !headers.has('cookie') && !headers.has('authorization')) headers.set('authorization', `Bearer ${ADMIN}`);
  return fetch(path.startsWith('http') ? path : `${h.url}${path}`, { ...init, headers, redirect: 'manual' });
}
