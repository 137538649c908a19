// What the container-kit tests share: typed handles on the kit's plain-JS modules (the root
// tsconfig reads no JS, so the types are declared here), temp homes, and running the helper bin
// the way git does (a child process, request on stdin).
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Server } from 'node:http';

export const KIT_DIR = resolve(__dirname, '../../container-kit');
export const HELPER_BIN = join(KIT_DIR, 'bin/git-credential-repo-connect.js');
export const RECEIVER_BIN = join(KIT_DIR, 'bin/repo-connect-token-receiver.js');

export interface TokenRecord {
  token?: string;
  username?: string;
  expires_at?: string | null;
  generation: number;
  rig_id?: string | null;
  dispatch_id?: string | null;
  container_token_sha256: string | null;
  source?: 'push' | 'pull';
  written_at: string;
}

export interface Receiver {
  server: Server;
  listen(port: number, host: string): Promise<number>;
  close(): Promise<void>;
}

// Node's own require, not Jest's: the kit is plain CommonJS and must run untransformed.
const kitRequire = createRequire(join(KIT_DIR, 'package.json'));

export const receiverLib = kitRequire('./lib/receiver.js') as {
  createReceiver(opts: {
    rigId: string;
    containerToken?: string;
    containerTokenFile?: string;
    tokenFile: string;
    log?: (line: string) => void;
  }): Receiver;
  MAX_BODY_BYTES: number;
};

export const payloadLib = kitRequire('./lib/payload.js') as {
  checkTokenPayload(body: unknown): { field: string; message: string } | null;
};

export const tokenFileLib = kitRequire('./lib/token-file.js') as {
  readTokenFile(file: string): Promise<TokenRecord | null>;
  writeTokenRecord(file: string, record: TokenRecord): Promise<{ written: boolean; current: TokenRecord }>;
  sha256Hex(s: string): string;
};

export const helperLib = kitRequire('./lib/credential-helper.js') as {
  runCredentialHelper(args: {
    operation: string | undefined;
    input: string;
    env: NodeJS.ProcessEnv;
    timeoutMs?: number;
  }): Promise<{ stdout: string; stderr: string }>;
  parseRequest(text: string): Record<string, string>;
};

export const configLib = kitRequire('./lib/config.js') as {
  loadConfig(env: NodeJS.ProcessEnv): {
    config: {
      tokenFile: string;
      gitHosts: string[];
      httpHosts: string[];
      minValiditySeconds: number;
      containerToken?: string;
      rigId?: string;
    };
    problems: string[];
  };
};

/** A fresh directory that `cleanup` removes. */
export function tempDir(prefix = 'repo-connect-kit-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** An ISO expiry `seconds` from now. */
export function expiresIn(seconds: number): string {
  return new Date(Date.now() + seconds * 1000).toISOString();
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs the helper bin like git does: `<bin> <operation>`, request on stdin, only `env` in the environment. */
export function runHelperBin(operation: string, input: string, env: Record<string, string | undefined>): Promise<RunResult> {
  const started = Date.now();
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [HELPER_BIN, operation], {
      env: { PATH: process.env.PATH, ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    child.on('error', reject);
    child.on('close', (code) => resolvePromise({ code, stdout, stderr, ms: Date.now() - started }));
    child.stdin.end(input);
  });
}

/** Parses git's `key=value` answer lines. */
export function parseAnswer(text: string): Record<string, string> {
  return Object.fromEntries(
    text
      .split('\n')
      .filter(Boolean)
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
}
