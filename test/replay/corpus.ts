// The replay corpus: workflow histories recorded from every path of the git-token workflow, kept
// under test/replay/histories/<recording>/<path>.json and replayed by every `npm test` against the
// current workflow code. A recording's directory names the workflow code that produced it (date +
// hash of workflows/), and earlier recordings stay: their runs may still be live in production.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { temporal } from '@temporalio/proto';

export const HISTORIES_DIR = join(__dirname, 'histories');

type History = temporal.api.history.v1.IHistory;
const HistoryType = temporal.api.history.v1.History;

/** One recorded path: every run of the workflows it involved (continue-as-new makes several). */
export interface CorpusFile {
  path: string;
  description: string;
  recorded: { at: string; commit: string; workflowSourceHash: string; sdk: string };
  runs: Array<{ workflowId: string; runId: string; history: History }>;
}

/**
 * A history as plain JSON: protobufjs's object form (enum names, int64 as strings, bytes as base64).
 * Not `historyToJSON` from @temporalio/common, which throws "type must be a Type" in this install
 * (it bundles protobufjs 8 beside @temporalio/proto's classes).
 */
export function historyToObject(history: History): Record<string, unknown> {
  return HistoryType.toObject(HistoryType.fromObject(history), { longs: String, enums: String, bytes: String });
}

/** The History message back from its object form (payload bytes decoded). */
export function historyFromObject(obj: unknown): temporal.api.history.v1.History {
  return HistoryType.fromObject(obj as Record<string, unknown>);
}

/** Every corpus file, oldest recording first, each with its histories decoded. */
export function loadCorpus(dir = HISTORIES_DIR): Array<CorpusFile & { file: string }> {
  if (!existsSync(dir)) return [];
  const out: Array<CorpusFile & { file: string }> = [];
  for (const recording of readdirSync(dir).sort()) {
    const rdir = join(dir, recording);
    if (!statSync(rdir).isDirectory()) continue;
    for (const name of readdirSync(rdir)
      .filter((n) => n.endsWith('.json'))
      .sort()) {
      const raw = JSON.parse(readFileSync(join(rdir, name), 'utf8')) as CorpusFile;
      out.push({
        ...raw,
        file: relative(dir, join(rdir, name)),
        runs: raw.runs.map((r) => ({ ...r, history: historyFromObject(r.history) })),
      });
    }
  }
  // Oldest recording first by when it was recorded: directory names sort by day, then by a code hash.
  const at = (f: CorpusFile) => f.recorded.at;
  const firstAt = new Map<string, string>();
  for (const f of out) {
    const rec = f.file.split('/')[0];
    if (!firstAt.has(rec) || at(f) < firstAt.get(rec)!) firstAt.set(rec, at(f));
  }
  const key = (f: CorpusFile & { file: string }) => firstAt.get(f.file.split('/')[0])!;
  return out.sort((a, b) => key(a).localeCompare(key(b)) || a.file.localeCompare(b.file));
}

// Shapes of the secrets this service handles: GitHub tokens (ghs_, ghu_, gho_, ghp_, github_pat_),
// GitLab tokens (glpat-, gloas-, and OAuth tokens as 64 hex characters, as its fake issues them),
// our own container and owner tokens (rco_), and PEM private keys. Fingerprints are `sha256:` + 16 hex.
const SECRET_SHAPES = [
  /\bgh[supor]_[A-Za-z0-9_-]{20,}/,
  /\bgithub_pat_[A-Za-z0-9_]{20,}/,
  /\bgl(pat|oas|rt)-[A-Za-z0-9_-]{16,}/,
  /(?<![0-9a-f:])[0-9a-f]{40,}(?![0-9a-f])/,
  /\brco_[A-Za-z0-9_-]{16,}/,
  /-----BEGIN [A-Z ]*PRIVATE KEY-----/,
];
// JSON keys that would carry a secret if one ever crossed the workflow boundary.
const SECRET_KEYS = /"(token|accessToken|access_token|refreshToken|refresh_token|containerToken|container_token|password|privateKey)"\s*:/;

/** Names what in `text` looks like a secret (the shape, never the match). */
export function secretShapesIn(text: string): string[] {
  const found = SECRET_SHAPES.filter((re) => re.test(text)).map((re) => `value like ${re.source}`);
  const key = SECRET_KEYS.exec(text);
  if (key) found.push(`key "${key[1]}"`);
  return found;
}

// Fields that identify the worker's build (hashes of the bundle), not anything secret.
const BUILD_FIELDS = new Set(['binaryChecksum', 'buildId']);

/** Where in a history (payloads decoded) something looks like a secret: `events.3.…: value like …`. */
export function secretsInHistory(value: unknown, path = ''): string[] {
  if (value instanceof Uint8Array) return secretsInHistory(Buffer.from(value).toString('utf8'), path);
  if (typeof value === 'string') return secretShapesIn(value).map((what) => `${path}: ${what}`);
  if (!value || typeof value !== 'object') return [];
  return Object.entries(value)
    .filter(([k]) => !BUILD_FIELDS.has(k))
    .flatMap(([k, v]) => secretsInHistory(v, path ? `${path}.${k}` : k));
}
