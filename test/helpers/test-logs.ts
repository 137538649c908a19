// Every log line a test run writes, and every token the fakes issue, land in one directory per
// jest run (TEST_LOG_DIR, set by global setup). Global teardown then scans the whole run's logs for
// every issued token: a token in a log line is a leak however it got there (LESSONS: tokens ended
// up pasted into bug reports), and a path-based redaction list cannot promise that on its own.
import { appendFileSync, existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { createHash } from 'node:crypto';

const TOKENS_PREFIX = 'issued-tokens-';
// A leaked part of a token at least WINDOW + STEP - 1 characters long is found wherever it sits.
const WINDOW = 24;
const STEP = 12;

/** The run's log directory, or undefined outside jest (benchmarks, tooling). */
export function runLogDir(): string | undefined {
  return process.env.TEST_LOG_DIR || undefined;
}

/** A file name that says which test file wrote it (jest's `expect` knows the test path). */
export function logFileName(kind: string): string {
  const state = (globalThis as { expect?: { getState?: () => { testPath?: string } } }).expect?.getState?.();
  const test = state?.testPath ? basename(state.testPath).replace(/\.test\.ts$/, '') : 'unknown';
  return `${kind}-${test}-${process.pid}.log`.replace(/[^A-Za-z0-9_.-]/g, '_');
}

/** Appends `text` to the run's log file `name` (no-op outside jest). */
export function appendRunLog(name: string, text: string): void {
  const dir = runLogDir();
  if (dir) appendFileSync(join(dir, name), text);
}

/** Records tokens a fake handed out, so teardown can look for them in every log. */
export function recordIssuedTokens(tokens: Iterable<string>): void {
  const dir = runLogDir();
  const list = [...tokens].filter((t) => typeof t === 'string' && t.length >= WINDOW + STEP);
  if (dir && list.length) appendFileSync(join(dir, `${TOKENS_PREFIX}${process.pid}.txt`), `${list.join('\n')}\n`);
}

export interface Leak {
  file: string;
  line: number;
  /** SHA-256 prefix of the leaked token: enough to match it, useless to an attacker. */
  fingerprint: string;
}

/** Finds every issued token (or a long part of one) in the run's log files. */
export function scanRunLogs(dir: string): Leak[] {
  if (!existsSync(dir)) return [];
  const files = readdirSync(dir);
  const tokens = new Set<string>();
  for (const f of files.filter((n) => n.startsWith(TOKENS_PREFIX))) {
    for (const t of readFileSync(join(dir, f), 'utf8').split('\n')) if (t) tokens.add(t);
  }
  // Windows of each token at fixed offsets: a single pass over the logs then finds whole tokens
  // and long fragments without comparing every token with every line.
  const windows = new Map<string, string>();
  for (const t of tokens) for (let i = 0; i + WINDOW <= t.length; i += STEP) windows.set(t.slice(i, i + WINDOW), t);
  const leaks: Leak[] = [];
  for (const f of files.filter((n) => n.endsWith('.log'))) {
    const lines = readFileSync(join(dir, f), 'utf8').split('\n');
    lines.forEach((text, i) => {
      for (const run of text.match(/[A-Za-z0-9_-]{24,}/g) ?? []) {
        for (let j = 0; j + WINDOW <= run.length; j++) {
          const token = windows.get(run.slice(j, j + WINDOW));
          if (token) {
            leaks.push({ file: f, line: i + 1, fingerprint: createHash('sha256').update(token).digest('hex').slice(0, 12) });
            return;
          }
        }
      }
    });
  }
  return leaks;
}

/** How many tokens the run recorded (teardown says so, so an empty scan is visible). */
export function issuedTokenCount(dir: string): number {
  if (!existsSync(dir)) return 0;
  const tokens = new Set<string>();
  for (const f of readdirSync(dir).filter((n) => n.startsWith(TOKENS_PREFIX))) {
    for (const t of readFileSync(join(dir, f), 'utf8').split('\n')) if (t) tokens.add(t);
  }
  return tokens.size;
}
