// A fake repo-connect pull endpoint (`POST /api/internal/rigs/:rig_id/git-token`): a real HTTP
// listener answering like the service, including its failures (401 unknown token, 403 other rig,
// 410 dispatch ended, 429 with Retry-After, 502 provider error, no answer at all).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

export type ServiceMode = 'ok' | 'ended' | 'provider_down' | 'hang' | 'bad_token';

export interface IssuedToken {
  token: string;
  expires_at: string | null;
  username: string;
  generation: number;
}

export interface SeenRequest {
  method: string;
  path: string;
  authorization: string | undefined;
  /** The Repo-Connect-Generation header: the generation the caller said it holds. */
  generation: string | undefined;
  /** Pulls carry no body ('0'), so the service can answer them in its lane. */
  contentLength: string | undefined;
}

export class FakeRepoConnect {
  mode: ServiceMode = 'ok';
  /** Answer this many requests with 429 first. */
  rateLimited = 0;
  retryAfter = '1';
  readonly requests: SeenRequest[] = [];
  /** Runs before a 200 is sent: lets a test land a push while a pull is in flight. */
  beforeAnswer: (() => Promise<void>) | undefined;

  private constructor(
    private readonly server: Server,
    readonly url: string,
    readonly rigId: string,
    readonly containerToken: string,
    public current: IssuedToken,
  ) {}

  static async start(opts: { rigId: string; containerToken: string; current: IssuedToken }): Promise<FakeRepoConnect> {
    const server = createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as { port: number };
    const fake = new FakeRepoConnect(server, `http://127.0.0.1:${port}`, opts.rigId, opts.containerToken, opts.current);
    server.on('request', (req: IncomingMessage, res: ServerResponse) => void fake.handle(req, res));
    return fake;
  }

  /** Mints the next token, as a refresh would. */
  rotate(token: string, expires_at: string | null): IssuedToken {
    this.current = { ...this.current, token, expires_at, generation: this.current.generation + 1 };
    return this.current;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const generation = req.headers['repo-connect-generation'];
    this.requests.push({
      method: req.method ?? '',
      path: req.url ?? '',
      authorization: req.headers.authorization,
      generation: typeof generation === 'string' ? generation : undefined,
      contentLength: req.headers['content-length'],
    });
    req.resume();
    const match = /^\/api\/internal\/rigs\/([^/]+)\/git-token$/.exec(req.url ?? '');
    if (!match || req.method !== 'POST') return json(res, 404, { error: { code: 'not_found', message: 'Not found' } });
    if (req.headers.authorization !== `Bearer ${this.containerToken}`) {
      return json(res, 401, { error: { code: 'unauthorized', message: 'Unknown container token' } });
    }
    if (decodeURIComponent(match[1]) !== this.rigId)
      return json(res, 403, { error: { code: 'forbidden', message: 'Container token belongs to another rig' } });
    if (this.mode === 'ended') return json(res, 410, { error: { code: 'dispatch_ended', message: 'The dispatch has stopped' } });
    if (this.rateLimited > 0) {
      this.rateLimited -= 1;
      res.setHeader('Retry-After', this.retryAfter);
      return json(res, 429, { error: { code: 'rate_limited', message: 'Slow down' } });
    }
    if (this.mode === 'provider_down') {
      return json(res, 502, { error: { code: 'provider_unavailable', message: 'GitHub answered 503 Service Unavailable' } });
    }
    if (this.mode === 'hang') return; // the helper's timeout fires
    if (this.beforeAnswer) await this.beforeAnswer();
    if (this.mode === 'bad_token') return json(res, 200, { ...this.current, token: `${this.current.token}\nusername=evil` });
    return json(res, 200, this.current);
  }
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify(body));
}
