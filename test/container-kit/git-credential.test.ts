// The helper wired into a real git the way the README tells containers to do it: installed on PATH
// as `git-credential-repo-connect`, configured as `credential.https://github.com.helper repo-connect`,
// with GIT_TERMINAL_PROMPT=0. `git credential fill/reject` drive the same code paths as a clone.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, symlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { FakeRepoConnect } from './fake-service';
import { expiresIn, HELPER_BIN, parseAnswer, tempDir, tokenFileLib } from './kit';

const RIG = 'rig-3c9d';
const CONTAINER_TOKEN = 'ct_git_test_00112233445566778899';

let tmp: ReturnType<typeof tempDir>;
let service: FakeRepoConnect;
let env: Record<string, string>;

beforeEach(async () => {
  tmp = tempDir();
  service = await FakeRepoConnect.start({
    rigId: RIG,
    containerToken: CONTAINER_TOKEN,
    current: { token: `ghs_${'b'.repeat(520)}`, expires_at: expiresIn(3600), username: 'x-access-token', generation: 1 },
  });
  // What `npm install -g` does: a link named like the bin on PATH; `#!/usr/bin/env node` finds this node.
  const binDir = join(tmp.dir, 'bin');
  mkdirSync(binDir);
  symlinkSync(HELPER_BIN, join(binDir, 'git-credential-repo-connect'));
  const home = join(tmp.dir, 'home');
  mkdirSync(home);
  env = {
    HOME: home,
    PATH: [binDir, dirname(process.execPath), process.env.PATH].join(':'),
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_TERMINAL_PROMPT: '0',
    REPO_CONNECT_URL: service.url,
    REPO_CONNECT_RIG_ID: RIG,
    REPO_CONNECT_CONTAINER_TOKEN: CONTAINER_TOKEN,
    REPO_CONNECT_GIT_HOST: 'github.com',
  };
  // An image may already carry a plaintext `store` helper; the empty entry resets the list for github.com.
  const config = (...args: string[]) => execFileSync('git', ['config', '--global', ...args], { env });
  config('credential.helper', 'store');
  config('--replace-all', 'credential.https://github.com.helper', '');
  config('--add', 'credential.https://github.com.helper', 'repo-connect');
});

afterEach(async () => {
  await service.close();
  tmp.cleanup();
});

function git(args: string[], input: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('git', args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input);
  });
}

const FILL = 'protocol=https\nhost=github.com\npath=acme/widgets.git\n\n';

describe('git with the repo-connect credential helper', () => {
  it('gets username and password from the helper, then from its cache', async () => {
    const first = await git(['credential', 'fill'], FILL);
    expect(first.code).toBe(0);
    expect(parseAnswer(first.stdout)).toMatchObject({
      protocol: 'https',
      host: 'github.com',
      username: 'x-access-token',
      password: service.current.token,
    });
    expect(service.requests).toHaveLength(1);

    const second = await git(['credential', 'fill'], FILL);
    expect(parseAnswer(second.stdout).password).toBe(service.current.token);
    expect(service.requests).toHaveLength(1);
  });

  it('keeps the token out of ~/.git-credentials even with a store helper configured globally', async () => {
    const filled = parseAnswer((await git(['credential', 'fill'], FILL)).stdout);
    const approve = await git(
      ['credential', 'approve'],
      `protocol=https\nhost=github.com\nusername=${filled.username}\npassword=${filled.password}\n\n`,
    );
    expect(approve.code).toBe(0);
    expect(existsSync(join(env.HOME, '.git-credentials'))).toBe(false);
  });

  it('drops a rejected token so the next fill pulls a new one', async () => {
    const first = await git(['credential', 'fill'], FILL);
    const rejected = parseAnswer(first.stdout).password;
    const reject = await git(
      ['credential', 'reject'],
      `protocol=https\nhost=github.com\nusername=x-access-token\npassword=${rejected}\n\n`,
    );
    expect(reject.code).toBe(0);
    expect((await tokenFileLib.readTokenFile(join(env.HOME, '.repo-connect', 'git-token.json')))?.token).toBeUndefined();

    const fresh = service.rotate(`ghs_${'c'.repeat(520)}`, expiresIn(3600));
    const next = await git(['credential', 'fill'], FILL);
    expect(parseAnswer(next.stdout).password).toBe(fresh.token);
    expect(service.requests).toHaveLength(2);
  });

  it('fails with an authentication error, never a prompt, when no token can be had', async () => {
    service.mode = 'ended';
    const run = await git(['credential', 'fill'], FILL);
    expect(run.code).not.toBe(0);
    expect(run.stdout).toBe('');
    expect(run.stderr).toContain('git-credential-repo-connect: dispatch ended (410)');
    expect(run.stderr).toContain('terminal prompts disabled');
    expect(run.stderr).not.toContain(CONTAINER_TOKEN);
  });

  it('is not asked for hosts outside its configured scope', async () => {
    delete env.REPO_CONNECT_GIT_HOST; // only git's own scoping stands between gitlab.com and the token
    const run = await git(['credential', 'fill'], 'protocol=https\nhost=gitlab.com\n\n');
    expect(run.code).not.toBe(0);
    expect(service.requests).toHaveLength(0);
  });
});
