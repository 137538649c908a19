// Shared plumbing of the provider fakes: a real node:http listener on 127.0.0.1, body parsing,
// a request log without secrets, and failure injection (failNext / setOutage / hangs).
import { createServer, STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { recordIssuedTokens } from '../helpers/test-logs';

export interface FakeRequest {
  method: string;
  /** Path relative to the fake's API root or prefix, without the query. */
  path: string;
  query: URLSearchParams;
  headers: IncomingMessage['headers'];
  /** Parsed JSON or form body ({} when empty or unparseable). */
  body: Record<string, unknown>;
}

export interface FakeResponse {
  status: number;
  json?: unknown;
  html?: string;
  headers?: Record<string, string>;
  /** Send only this many bytes of the body, then drop the connection. */
  cutAfter?: number;
}

export interface FailureSpec {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
  /** Which requests fail (path relative to the API root); default every API request. */
  match?: (method: string, path: string) => boolean;
  /** Wait this long before answering: long enough and the client times out. */
  hangMs?: number;
  /** The request takes effect as usual and only its answer is replaced (an answer lost on the way back). */
  lose?: boolean;
  /** The usual answer, made at once and sent after `hangMs` (a slow network): what it says may be stale by then. */
  late?: boolean;
  /**
   * The usual answer (status and headers as usual) whose body stops after this many bytes, the
   * connection dropped: a reset mid-transfer. `status` is ignored.
   */
  cut?: number;
}

export interface RequestLogEntry {
  method: string;
  path: string;
  /** Query string with credential-like parameters removed. */
  query: string;
  status: number;
}

const SECRET_PARAMS = ['access_token', 'private_token', 'code', 'refresh_token', 'client_secret', 'code_verifier', 'token'];
// Bounded so a benchmark with thousands of dispatches does not grow the log without limit.
const MAX_LOG = 50_000;

export abstract class FakeHttpService {
  readonly requests: RequestLogEntry[] = [];
  protected port = 0;
  private server?: Server;
  private readonly failures: Array<{ remaining: number; spec: FailureSpec }> = [];
  private outage: number | null = null;
  private readonly hangs = new Set<() => void>();

  /** Handles one request that injection let through. */
  protected abstract handle(req: FakeRequest): Promise<FakeResponse> | FakeResponse;
  /** Maps a raw pathname to the service-relative path, or undefined when outside the service (404). */
  protected abstract relativePath(pathname: string): string | undefined;
  /** Whether failure injection applies (API calls, not the browser pages). */
  protected abstract injectable(method: string, path: string): boolean;
  /** The body an injected failure sends when the test gives none. */
  protected abstract failureBody(status: number): unknown;

  /**
   * Lets a subclass answer a raw request itself, before the body is read and parsed: streaming
   * protocols (git smart HTTP) need the untouched request. Returns whether it took the request.
   */
  protected takeover(_req: IncomingMessage, _res: ServerResponse): boolean {
    return false;
  }

  /** The next `count` matching API requests fail with `spec`. */
  failNext(count: number, spec: FailureSpec): void {
    this.failures.push({ remaining: count, spec });
  }

  /** Every API request fails with `status` until called with null. */
  setOutage(status: number | null): void {
    this.outage = status;
  }

  /** Drops pending failNext rules and any outage. */
  clearFailures(): void {
    this.failures.length = 0;
    this.outage = null;
  }

  protected async listen(): Promise<void> {
    const server = createServer((req, res) => {
      if (!this.takeover(req, res)) void this.dispatch(req, res);
    });
    server.keepAliveTimeout = 5_000;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    this.server = server;
    this.port = (server.address() as AddressInfo).port;
  }

  /** Stops listening, drops open connections and releases hung requests. */
  async close(): Promise<void> {
    // Tokens made without an HTTP answer (grants set up by a test) are checked by the log scan too.
    const issued = (this as { issuedTokens?: () => string[] }).issuedTokens;
    if (typeof issued === 'function') recordIssuedTokens(issued.call(this));
    for (const release of this.hangs) release();
    this.hangs.clear();
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }

  private async dispatch(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const method = req.method ?? 'GET';
    const path = this.relativePath(url.pathname);
    let response: FakeResponse;
    try {
      const body = await readBody(req);
      const request = { method, path: path ?? '', query: url.searchParams, headers: req.headers, body };
      if (path === undefined) response = { status: 404, json: { message: 'Not Found' } };
      else response = (await this.injected(method, path, () => this.handle(request))) ?? (await this.handle(request));
    } catch (err) {
      response = { status: 500, json: { message: `fake crashed: ${err instanceof Error ? err.message : String(err)}` } };
    }
    this.log(method, path ?? url.pathname, url.searchParams, response.status);
    recordIssuedTokens(issuedIn(response.json));
    if (res.destroyed || res.writableEnded) return;
    const headers: Record<string, string> = { ...response.headers };
    let payload = '';
    if (response.html !== undefined) {
      headers['content-type'] = 'text/html; charset=utf-8';
      payload = response.html;
    } else if (response.json !== undefined) {
      headers['content-type'] = 'application/json; charset=utf-8';
      payload = JSON.stringify(response.json);
    }
    if (response.cutAfter !== undefined) {
      // Announced whole, sent in part: the client sees the connection end mid-body.
      const bytes = Buffer.from(payload, 'utf8');
      res.writeHead(response.status, { ...headers, 'content-length': String(bytes.length) });
      res.write(bytes.subarray(0, response.cutAfter), () => res.destroy());
      return;
    }
    res.writeHead(response.status, headers).end(payload);
  }

  private async injected(
    method: string,
    path: string,
    handle: () => Promise<FakeResponse> | FakeResponse,
  ): Promise<FakeResponse | undefined> {
    if (!this.injectable(method, path)) return undefined;
    let spec: FailureSpec | undefined;
    if (this.outage !== null) spec = { status: this.outage };
    else {
      const i = this.failures.findIndex((f) => !f.spec.match || f.spec.match(method, path));
      if (i >= 0) {
        spec = this.failures[i].spec;
        if (--this.failures[i].remaining <= 0) this.failures.splice(i, 1);
      }
    }
    if (!spec) return undefined;
    if (spec.cut !== undefined) return { ...(await handle()), cutAfter: spec.cut };
    if (spec.late) {
      const answer = await handle();
      await this.sleep(spec.hangMs ?? 0);
      return answer;
    }
    if (spec.lose) recordIssuedTokens(issuedIn((await handle()).json));
    if (spec.hangMs) await this.sleep(spec.hangMs);
    const headers = { ...spec.headers };
    if (spec.status === 429 && !Object.keys(headers).some((h) => h.toLowerCase() === 'retry-after')) headers['retry-after'] = '1';
    return { status: spec.status, json: spec.body ?? this.failureBody(spec.status), headers };
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const release = () => {
        clearTimeout(timer);
        this.hangs.delete(release);
        resolve();
      };
      const timer = setTimeout(release, ms);
      this.hangs.add(release);
    });
  }

  private log(method: string, path: string, query: URLSearchParams, status: number): void {
    const safe = new URLSearchParams(query);
    for (const p of SECRET_PARAMS) safe.delete(p);
    if (this.requests.length >= MAX_LOG) this.requests.splice(0, MAX_LOG / 2);
    this.requests.push({ method, path, query: safe.toString(), status });
  }
}

/** Tokens an answer hands out (GitHub's `token`, GitLab's OAuth pair), for the run's log scan. */
function issuedIn(json: unknown): string[] {
  if (typeof json !== 'object' || json === null) return [];
  const body = json as Record<string, unknown>;
  return ['token', 'access_token', 'refresh_token'].map((k) => body[k]).filter((v): v is string => typeof v === 'string');
}

/** The standard reason phrase for a status. */
export function statusText(status: number): string {
  return STATUS_CODES[status] ?? 'Error';
}

async function readBody(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  if (!text) return {};
  if ((req.headers['content-type'] ?? '').includes('application/x-www-form-urlencoded')) {
    return Object.fromEntries(new URLSearchParams(text));
  }
  try {
    const parsed: unknown = JSON.parse(text);
    return typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>) : {};
  } catch {
    return Object.fromEntries(new URLSearchParams(text));
  }
}

/** Escapes text for the fakes' HTML pages. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
