// A loopback TCP proxy in front of the test Postgres that fails the way a network or a restarting
// server does: it can cut every connection and refuse new ones ("down"), and it can do that at the
// moment a chosen statement goes by, either before the statement reaches Postgres (it never runs)
// or after (it runs and commits, and its answer is lost). Statements are recognised by a marker
// among their bytes, such as a parameter value, which the extended protocol sends as text.
import net from 'node:net';

export type CutPoint = 'before' | 'after';

export class PgProxy {
  private readonly sockets = new Set<net.Socket>();
  private refusing = false;
  private rule: { marker: Buffer; point: CutPoint; done: () => void } | null = null;

  private constructor(
    private readonly server: net.Server,
    /** The database URL through the proxy. */
    readonly url: string,
  ) {}

  /** A proxy to the database at `databaseUrl` (loopback only). */
  static async start(databaseUrl: string): Promise<PgProxy> {
    const target = new URL(databaseUrl);
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const through = new URL(databaseUrl);
    through.hostname = '127.0.0.1';
    through.port = String((server.address() as net.AddressInfo).port);
    const proxy = new PgProxy(server, through.toString());
    server.on('connection', (client) => proxy.accept(client, target.hostname, Number(target.port || 5432)));
    return proxy;
  }

  /** Cuts every connection and refuses new ones until `up`. */
  down(): void {
    this.refusing = true;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  }

  up(): void {
    this.refusing = false;
  }

  /**
   * Goes down when a statement carrying `marker` comes by: `before` it is sent on (it never runs) or
   * `after` (it runs; its answer is held back until the cut). Resolves once down.
   */
  cutOn(marker: string, point: CutPoint): Promise<void> {
    return new Promise((resolve) => {
      this.rule = { marker: Buffer.from(marker), point, done: resolve };
    });
  }

  async close(): Promise<void> {
    this.down();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: net.Socket, host: string, port: number) {
    if (this.refusing) {
      client.destroy();
      return;
    }
    const upstream = net.connect(port, host);
    this.sockets.add(client).add(upstream);
    let muted = false;
    let tail = Buffer.alloc(0);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      this.sockets.delete(client);
      this.sockets.delete(upstream);
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    upstream.on('data', (chunk: Buffer) => {
      if (!muted) client.write(chunk);
    });
    client.on('data', (chunk: Buffer) => {
      const rule = this.rule;
      // The marker may straddle two reads: look at the end of the last one too.
      const seen = Buffer.concat([tail, chunk]);
      tail = rule ? seen.subarray(Math.max(0, seen.length - rule.marker.length + 1)) : tail;
      if (!rule || !seen.includes(rule.marker)) {
        upstream.write(chunk);
        return;
      }
      this.rule = null;
      muted = true;
      if (rule.point === 'after') upstream.write(chunk);
      // Long enough for Postgres to run and commit a small statement it was sent.
      setTimeout(() => {
        this.down();
        rule.done();
      }, 200);
    });
  }
}
