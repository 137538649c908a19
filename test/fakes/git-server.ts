// A git smart-HTTP server for end-to-end tests: bare repositories made by the real `git` in a temp
// dir and served by git's own CGI program (`git-http-backend`), so clone, fetch and push speak the
// real protocol. Like github.com it wants HTTP Basic credentials on every request and answers 401
// with a Basic challenge otherwise: that challenge is what makes git ask its credential helpers.
// A token that may read but not write gets 403 on push, as GitHub answers read-only tokens.
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

export type GitAccess = 'read' | 'write';

/** Decides whether `password` (a provider token) may read or write `repoFullName` right now. */
export type GitAuthorizer = (password: string, repoFullName: string, access: GitAccess) => boolean;

export interface GitRequestLogEntry {
  method: string;
  repo: string;
  service: string;
  /** Whether credentials came with the request (git sends none until a 401 asks for them). */
  withCredentials: boolean;
  /** SHA-256 of the password presented, never the password itself. */
  passwordSha256: string | null;
  status: number;
}

const BACKEND = join(execFileSync('git', ['--exec-path'], { encoding: 'utf8' }).trim(), 'git-http-backend');
const SMART_PATH = /^\/([^/]+\/[^/]+)\.git\/(info\/refs|git-upload-pack|git-receive-pack)$/;
const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

export class FakeGitServer {
  readonly requests: GitRequestLogEntry[] = [];
  /** What git-http-backend wrote to stderr: shown when a test fails, scanned for secrets. */
  readonly backendStderr: string[] = [];
  /** Handles one request on `/<owner>/<repo>.git/...`; give it to FakeGitHub's `gitHandler`. */
  readonly handler = (req: IncomingMessage, res: ServerResponse): void => void this.serve(req, res);

  private constructor(
    readonly root: string,
    private readonly authorize: GitAuthorizer,
  ) {}

  static create(authorize: GitAuthorizer): FakeGitServer {
    return new FakeGitServer(mkdtempSync(join(tmpdir(), 'repo-connect-git-')), authorize);
  }

  /** A server that honours exactly the tokens `gh` considers live, mounted on its clone URLs. */
  static forGitHub(gh: {
    isTokenLive(token: string, repo: string, access: GitAccess): boolean;
    gitHandler: FakeGitServer['handler'] | undefined;
  }): FakeGitServer {
    const server = FakeGitServer.create((password, repo, access) => gh.isTokenLive(password, repo, access));
    gh.gitHandler = server.handler;
    return server;
  }

  /** A server that honours exactly what `gl` would accept (project tokens on their own project only). */
  static forGitLab(gl: {
    gitAccess(password: string, repo: string, access: GitAccess): boolean;
    gitHandler: FakeGitServer['handler'] | undefined;
  }): FakeGitServer {
    const server = FakeGitServer.create((password, repo, access) => gl.gitAccess(password, repo, access));
    gl.gitHandler = server.handler;
    return server;
  }

  /** Creates the bare repository `<owner>/<name>` with one commit (a README) on `branch`. */
  createRepo(fullName: string, branch = 'main'): void {
    const dir = this.repoDir(fullName);
    mkdirSync(dirname(dir), { recursive: true });
    this.git(['init', '--quiet', '--bare', `--initial-branch=${branch}`, dir]);
    // Plumbing instead of a work tree: one blob, one tree, one commit, one ref.
    const g = (args: string[], input?: string) => this.git(['--git-dir', dir, ...args], input);
    const blob = g(['hash-object', '-w', '--stdin'], `# ${fullName}\n`);
    const tree = g(['mktree'], `100644 blob ${blob}\tREADME.md\n`);
    const commit = g(['commit-tree', tree, '-m', 'Initial commit']);
    g(['update-ref', `refs/heads/${branch}`, commit]);
  }

  /** The commit `ref` points at in the bare repository, or null when there is no such ref. */
  ref(fullName: string, ref: string): string | null {
    try {
      return this.git(['--git-dir', this.repoDir(fullName), 'rev-parse', '--verify', '--quiet', ref]);
    } catch {
      return null;
    }
  }

  close(): void {
    rmSync(this.root, { recursive: true, force: true });
  }

  private repoDir(fullName: string): string {
    return join(this.root, `${fullName}.git`);
  }

  private git(args: string[], input?: string): string {
    return execFileSync('git', args, { input, env: this.gitEnv(), encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] }).trim();
  }

  /** Nothing from the machine's or the runner's git config reaches the server side. */
  private gitEnv(): Record<string, string> {
    const who = {
      GIT_AUTHOR_NAME: 'Fake GitHub',
      GIT_AUTHOR_EMAIL: 'noreply@fake.invalid',
      GIT_COMMITTER_NAME: 'Fake GitHub',
      GIT_COMMITTER_EMAIL: 'noreply@fake.invalid',
    };
    return { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: this.root, GIT_CONFIG_NOSYSTEM: '1', LC_ALL: 'C', ...who };
  }

  private async serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const match = SMART_PATH.exec(url.pathname);
    const method = req.method ?? 'GET';
    const repo = match ? decodeURIComponent(match[1]) : '';
    const service = match?.[2] === 'info/refs' ? (url.searchParams.get('service') ?? '') : (match?.[2] ?? '');
    const credentials = basicCredentials(req.headers.authorization);
    const entry: GitRequestLogEntry = {
      method,
      repo,
      service,
      withCredentials: credentials !== null,
      passwordSha256: credentials && sha256(credentials.password),
      status: 0,
    };
    res.on('finish', () => this.requests.push({ ...entry, status: res.statusCode }));

    // Only the smart protocol, as GitHub: the dumb one would need no service and no access level.
    if (!match || (service !== 'git-upload-pack' && service !== 'git-receive-pack')) return plain(req, res, 404, 'Not Found');
    const access: GitAccess = service === 'git-receive-pack' ? 'write' : 'read';
    if (!credentials || !this.authorize(credentials.password, repo, access)) {
      // A good read-only token pushing is a 403 at GitHub, not a 401: git then keeps the credential.
      if (credentials && access === 'write' && this.authorize(credentials.password, repo, 'read')) {
        return plain(req, res, 403, `Permission to ${repo}.git denied to ${credentials.username}.`);
      }
      return plain(req, res, 401, 'Invalid username or token. Password authentication is not supported for Git operations.', {
        'WWW-Authenticate': 'Basic realm="GitHub"',
      });
    }
    await this.runBackend(req, res, url, credentials.username);
  }

  /** Runs git-http-backend as a CGI: request meta in the environment, body on stdin, headers then body on stdout. */
  private runBackend(req: IncomingMessage, res: ServerResponse, url: URL, user: string): Promise<void> {
    const header = (name: string) => (typeof req.headers[name] === 'string' ? (req.headers[name] as string) : '');
    const env: Record<string, string> = {
      ...this.gitEnv(),
      GIT_PROJECT_ROOT: this.root,
      GIT_HTTP_EXPORT_ALL: '1',
      GATEWAY_INTERFACE: 'CGI/1.1',
      SERVER_PROTOCOL: 'HTTP/1.1',
      REQUEST_METHOD: req.method ?? 'GET',
      PATH_INFO: decodeURIComponent(url.pathname),
      QUERY_STRING: url.search.slice(1),
      CONTENT_TYPE: header('content-type'),
      // An authenticated user is what lets http-backend run receive-pack (pushes) at all.
      REMOTE_USER: user || 'x-access-token',
      AUTH_TYPE: 'Basic',
      REMOTE_ADDR: req.socket.remoteAddress ?? '',
      HTTP_CONTENT_ENCODING: header('content-encoding'),
      HTTP_GIT_PROTOCOL: header('git-protocol'),
    };
    // Without CONTENT_LENGTH (chunked pushes) the backend reads the body to EOF.
    if (header('content-length')) env.CONTENT_LENGTH = header('content-length');

    return new Promise((resolve) => {
      const child = spawn(BACKEND, [], { env, stdio: ['pipe', 'pipe', 'pipe'] });
      let head: Buffer | null = Buffer.alloc(0);
      child.stdin.on('error', () => undefined); // the backend may exit without reading everything
      req.pipe(child.stdin);
      child.stderr.on('data', (c: Buffer) => this.backendStderr.push(c.toString('utf8')));
      child.stdout.on('data', (chunk: Buffer) => {
        if (head === null) return void res.write(chunk);
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        const { status, headers } = cgiHeaders(head.subarray(0, end).toString('latin1'));
        res.writeHead(status, headers);
        res.write(head.subarray(end + 4));
        head = null;
      });
      const finish = (failed: boolean) => {
        if (!res.headersSent) res.writeHead(failed ? 500 : 502, { 'Content-Type': 'text/plain' });
        res.end();
        resolve();
      };
      child.on('error', () => finish(true));
      child.on('close', () => finish(false));
    });
  }
}

function basicCredentials(authorization: string | undefined): { username: string; password: string } | null {
  const m = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(authorization ?? '');
  if (!m) return null;
  const decoded = Buffer.from(m[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon < 0 ? null : { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/** Splits a CGI header block; `Status: 403 Forbidden` becomes the status code. */
function cgiHeaders(block: string): { status: number; headers: OutgoingHttpHeaders } {
  let status = 200;
  const headers: OutgoingHttpHeaders = {};
  for (const line of block.split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim();
    const value = line.slice(colon + 1).trim();
    if (name.toLowerCase() === 'status') status = Number.parseInt(value, 10) || 500;
    else headers[name] = value;
  }
  return { status, headers };
}

function plain(req: IncomingMessage, res: ServerResponse, status: number, text: string, headers: Record<string, string> = {}): void {
  req.resume(); // drain an unwanted body so the connection stays usable
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', ...headers }).end(`${text}\n`);
}
