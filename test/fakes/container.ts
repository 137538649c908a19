// A fake agent container host: one HTTP listener serving many containers under /c/<name>, each
// checking its own bearer on POST /git-token like the real push receiver. Containers can be made
// to fail (drop connections, answer 500, 404/410 "gone", hang) or to answer slowly, to drive the
// workflow's and the activities' paths.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { timingSafeEqual, createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';

// The real receiver's body check (container-kit, plain CommonJS, loaded untransformed): a push the
// kit would refuse is refused here too, so a product bug that only the kit would catch shows.
const kitRequire = createRequire(join(resolve(__dirname, '../../container-kit'), 'package.json'));
const { checkPushBody } = kitRequire('./lib/payload.js') as {
  checkPushBody(body: unknown): { field: string; message: string } | null;
};

export type ContainerMode = 'ok' | 'drop' | 'error' | 'gone' | 'hang';

export interface ReceivedPush {
  rig_id: string;
  dispatch_id: string;
  token: string;
  expires_at: string | null;
  username: string;
  generation: number;
  receivedAt: number;
}

interface Box {
  bearer?: string;
  mode: ContainerMode;
  /** A push is received at once and answered this much later. */
  delayMs: number;
  pushes: ReceivedPush[];
  rejected: number;
  /** The next this many pushes are answered 500, whatever the mode (a blip). */
  failing: number;
  /** Bearer digests of pushes accepted before the container knew its token. */
  unverified: Buffer[];
  /** The rig of the first accepted push: a receiver serves one rig (REPO_CONNECT_RIG_ID). */
  rigId?: string;
  waiters: Array<{ predicate: (p: ReceivedPush) => boolean; resolve: (p: ReceivedPush) => void }>;
}

const digest = (s: string) => createHash('sha256').update(s).digest();

export class FakeContainerHost {
  private readonly boxes = new Map<string, Box>();
  private constructor(
    private readonly server: Server,
    readonly baseUrl: string,
    private readonly acceptBeforeBearer: boolean,
  ) {}

  /**
   * Starts the listener on a free loopback port. `acceptBeforeBearer` (benchmarks): a container
   * whose token is not known yet accepts pushes and checks their bearer once it is set, as a
   * container configured a moment after its dispatch was created would.
   */
  static async start(opts: { acceptBeforeBearer?: boolean } = {}): Promise<FakeContainerHost> {
    const holder: { host?: FakeContainerHost } = {};
    const server = createServer((req, res) => holder.host!.handle(req, res));
    server.keepAliveTimeout = 30_000;
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as { port: number };
    holder.host = new FakeContainerHost(server, `http://127.0.0.1:${port}`, opts.acceptBeforeBearer ?? false);
    return holder.host;
  }

  /** Registers a container and returns its URL (what a dispatch's `container_url` is). */
  add(name: string): string {
    this.boxes.set(name, { mode: 'ok', delayMs: 0, pushes: [], rejected: 0, failing: 0, unverified: [], waiters: [] });
    return `${this.baseUrl}/c/${name}`;
  }

  /** The container token this container accepts (known only after the dispatch is created). */
  setBearer(name: string, token: string): void {
    const box = this.box(name);
    box.bearer = token;
    const expected = digest(token);
    for (const seen of box.unverified.splice(0)) if (!timingSafeEqual(seen, expected)) box.rejected += 1;
  }

  setMode(name: string, mode: ContainerMode): void {
    this.box(name).mode = mode;
  }

  /** The next `count` pushes are answered 500; then the container answers as its mode says. */
  failNextPushes(name: string, count: number): void {
    this.box(name).failing = count;
  }

  /** Accepted pushes are answered `ms` after they arrived (a slow container). */
  setDelay(name: string, ms: number): void {
    this.box(name).delayMs = ms;
  }

  pushes(name: string): ReceivedPush[] {
    return this.box(name).pushes;
  }

  latest(name: string): ReceivedPush | undefined {
    return this.box(name).pushes.at(-1);
  }

  rejected(name: string): number {
    return this.box(name).rejected;
  }

  /** Resolves with the first push (already received or future) that satisfies `predicate`. */
  waitForPush(name: string, predicate: (p: ReceivedPush) => boolean, timeoutMs = 30_000): Promise<ReceivedPush> {
    const box = this.box(name);
    const seen = box.pushes.find(predicate);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        box.waiters = box.waiters.filter((w) => w.resolve !== done);
        reject(new Error(`no matching push to ${name} within ${timeoutMs} ms (${box.pushes.length} received)`));
      }, timeoutMs);
      const done = (p: ReceivedPush) => {
        clearTimeout(timer);
        resolve(p);
      };
      box.waiters.push({ predicate, resolve: done });
    });
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  private box(name: string): Box {
    const box = this.boxes.get(name);
    if (!box) throw new Error(`unknown container ${name}`);
    return box;
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const match = /^\/c\/([^/]+)\/git-token$/.exec(req.url ?? '');
    const box = match ? this.boxes.get(match[1]) : undefined;
    if (!match || !box || req.method !== 'POST') {
      res.writeHead(404).end();
      return;
    }
    if (box.mode === 'drop') {
      req.socket.destroy();
      return;
    }
    if (box.mode === 'hang') return; // the caller's timeout fires
    if (box.mode === 'gone') {
      res.writeHead(410).end();
      return;
    }
    if (box.failing > 0 || box.mode === 'error') {
      box.failing = Math.max(0, box.failing - 1);
      res.writeHead(500).end();
      return;
    }
    const auth = req.headers.authorization ?? '';
    const presented = auth.startsWith('Bearer ') ? auth.slice(7) : '';
    if (!box.bearer && this.acceptBeforeBearer) box.unverified.push(digest(presented));
    else if (!box.bearer || !timingSafeEqual(digest(presented), digest(box.bearer))) {
      box.rejected += 1;
      res.writeHead(401).end();
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let body: unknown;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        body = undefined;
      }
      const problem = checkPushBody(body);
      if (problem) {
        box.rejected += 1;
        res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'invalid_push', field: problem.field }));
        return;
      }
      const push = { ...(body as ReceivedPush), receivedAt: Date.now() };
      if (box.rigId !== undefined && push.rig_id !== box.rigId) {
        box.rejected += 1;
        res.writeHead(403, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'wrong_rig' }));
        return;
      }
      box.rigId = push.rig_id;
      box.pushes.push(push);
      for (const w of [...box.waiters]) {
        if (w.predicate(push)) {
          box.waiters = box.waiters.filter((x) => x !== w);
          w.resolve(push);
        }
      }
      if (box.delayMs > 0) setTimeout(() => res.writeHead(204).end(), box.delayMs);
      else res.writeHead(204).end();
    });
  }
}
