// An agent container as container-kit/README.md tells people to build one, minus Docker: the real
// push receiver as a child process started with the container (before any dispatch exists), the
// real credential helper on PATH, and a HOME whose global git config names that helper for the git
// host only. Git runs as a child process too, with no terminal, stdin closed and a deadline, so a
// prompt could only ever show up as a failure.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';

const KIT_DIR = resolve(__dirname, '../../container-kit');
const HELPER_BIN = join(KIT_DIR, 'bin/git-credential-repo-connect.js');
const RECEIVER_BIN = join(KIT_DIR, 'bin/repo-connect-token-receiver.js');

export interface GitRun {
  args: string[];
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
  timedOut: boolean;
}

export interface TokenFileRecord {
  token?: string;
  username?: string;
  expires_at?: string | null;
  generation: number;
  source?: 'push' | 'pull';
}

/** REPO_CONNECT_GIT_HOST for a git origin: the host, as http://host when the origin is plain http. */
function gitHostSetting(origin: string): string {
  const url = new URL(origin);
  return url.protocol === 'http:' ? `http://${url.host}` : url.host;
}

export class AgentContainer {
  /** Every git run so far, output included, for assertions and secret scans. */
  readonly runs: GitRun[] = [];
  readonly tokenFile: string;
  readonly containerTokenFile: string;
  /** The receiver's port, known once it listens. */
  port = 0;
  private receiver?: ChildProcess;
  private receiverOutput = '';
  private readonly home: string;
  private readonly env: Record<string, string>;

  private constructor(
    readonly dir: string,
    opts: { serviceUrl: string; rigId: string; gitOrigin: string },
  ) {
    this.home = join(dir, 'home');
    const bin = join(dir, 'bin');
    mkdirSync(this.home);
    mkdirSync(bin);
    // What `npm install -g` leaves behind: the helper on PATH under the name git looks for.
    symlinkSync(HELPER_BIN, join(bin, 'git-credential-repo-connect'));
    this.tokenFile = join(this.home, '.repo-connect', 'git-token.json');
    this.containerTokenFile = join(dir, 'container-token');
    // Built from nothing rather than from process.env: no proxy, askpass or git variable of the
    // runner may leak in. GIT_ASKPASS is empty on purpose: git skips an empty askpass.
    this.env = {
      HOME: this.home,
      PATH: [bin, dirname(process.execPath), process.env.PATH ?? '/usr/bin:/bin'].join(':'),
      LC_ALL: 'C',
      GIT_CONFIG_NOSYSTEM: '1',
      GIT_TERMINAL_PROMPT: '0',
      GIT_ASKPASS: '',
      REPO_CONNECT_URL: opts.serviceUrl,
      REPO_CONNECT_RIG_ID: opts.rigId,
      REPO_CONNECT_CONTAINER_TOKEN_FILE: this.containerTokenFile,
      REPO_CONNECT_TOKEN_FILE: this.tokenFile,
      // The fake git host speaks plain http, which the helper allows only for a host named so.
      REPO_CONNECT_GIT_HOST: gitHostSetting(opts.gitOrigin),
      // Tokens here live 8 s and are replaced ~3 s before expiry: the default (60 s) would make
      // every git call pull. 2 s still leaves any single git command here time to finish.
      REPO_CONNECT_MIN_VALIDITY_SECONDS: '2',
      REPO_CONNECT_RECEIVER_HOST: '127.0.0.1',
      REPO_CONNECT_RECEIVER_PORT: '0',
    };
  }

  /**
   * A running container: git configured for `gitOrigin` as the kit's README says (after a plaintext
   * `store` helper an image might carry), and the receiver listening, still without a container token.
   */
  static async start(opts: { serviceUrl: string; rigId: string; gitOrigin: string }): Promise<AgentContainer> {
    const box = new AgentContainer(mkdtempSync(join(tmpdir(), 'repo-connect-agent-')), opts);
    const origin = new URL(opts.gitOrigin).origin;
    for (const args of [
      ['credential.helper', 'store'],
      ['--replace-all', `credential.${origin}.helper`, ''],
      ['--add', `credential.${origin}.helper`, 'repo-connect'],
      ['user.name', 'Agent'],
      ['user.email', 'agent@example.invalid'],
    ]) {
      const run = await box.git(['config', '--global', ...args]);
      if (run.code !== 0) throw new Error(`git config failed: ${run.stderr}`);
    }
    await box.startReceiver();
    return box;
  }

  /** Where repo-connect pushes (the dispatch's `container_url`). */
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Hands the container the dispatch's `container_token`, as a 0600 file the kit reads. */
  receiveContainerToken(containerToken: string): void {
    writeFileSync(this.containerTokenFile, `${containerToken}\n`, { mode: 0o600 });
  }

  private async startReceiver(): Promise<void> {
    const child = spawn(process.execPath, [RECEIVER_BIN], { env: this.env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.receiver = child;
    await new Promise<void>((resolveStart, reject) => {
      const onData = (c: Buffer) => {
        this.receiverOutput += c.toString('utf8');
        const listening = /listening on 127\.0\.0\.1:(\d+)/.exec(this.receiverOutput);
        if (listening && !this.port) {
          this.port = Number(listening[1]);
          resolveStart();
        }
      };
      child.stdout.on('data', onData);
      child.stderr.on('data', onData);
      child.once('exit', (code) => reject(new Error(`receiver exited with ${code}: ${this.receiverOutput}`)));
    });
  }

  /** The token file as the kit wrote it, or null when absent. */
  tokenRecord(): TokenFileRecord | null {
    try {
      return JSON.parse(readFileSync(this.tokenFile, 'utf8')) as TokenFileRecord;
    } catch {
      return null;
    }
  }

  /** Runs git in `cwd` (relative to the container's directory): no TTY (own session), stdin closed, killed at the deadline. */
  git(args: string[], opts: { cwd?: string; timeoutMs?: number } = {}): Promise<GitRun> {
    const started = Date.now();
    return new Promise((resolveRun, reject) => {
      const child = spawn('git', args, {
        cwd: join(this.dir, opts.cwd ?? '.'),
        env: this.env,
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true,
      });
      let stdout = '';
      let stderr = '';
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        process.kill(-child.pid!, 'SIGKILL'); // the whole group: git, remote-http, the helper
      }, opts.timeoutMs ?? 30_000);
      child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
      child.on('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      child.on('close', (code) => {
        clearTimeout(timer);
        const run = { args, code, stdout, stderr, ms: Date.now() - started, timedOut };
        this.runs.push(run);
        resolveRun(run);
      });
    });
  }

  /** Everything the container printed or wrote in git's config: for "no token anywhere" scans. */
  transcript(): string {
    const files = [join(this.home, '.gitconfig'), join(this.dir, 'work', '.git', 'config')].map((f) => {
      try {
        return readFileSync(f, 'utf8');
      } catch {
        return '';
      }
    });
    return [this.receiverOutput, ...this.runs.flatMap((r) => [r.stdout, r.stderr]), ...files].join('\n');
  }

  /** Receiver output so far (one line per push, never a token). */
  get receiverLog(): string {
    return this.receiverOutput;
  }

  /** Stops the receiver (SIGTERM, as a container runtime would) and removes the directory. */
  async close(): Promise<void> {
    const child = this.receiver;
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
