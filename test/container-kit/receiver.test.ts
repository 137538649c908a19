// The push receiver over real HTTP: what the service's workflow sees when it POSTs a token, and
// what git's helper later finds in the token file.
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expiresIn, RECEIVER_BIN, receiverLib, tempDir, tokenFileLib, type Receiver } from './kit';

const RIG = 'rig-5f1c';
const CONTAINER_TOKEN = 'ct_receiver_test_0123456789abcdef';
const longToken = (n: number) => `ghs_${'A'.repeat(520)}${n}`;

let tmp: ReturnType<typeof tempDir>;
let tokenFile: string;
let receiver: Receiver;
let base: string;
let logs: string[];

beforeEach(async () => {
  tmp = tempDir();
  // Two levels that do not exist yet: the receiver creates them owner-only.
  tokenFile = join(tmp.dir, 'home', '.repo-connect', 'git-token.json');
  logs = [];
  receiver = receiverLib.createReceiver({ rigId: RIG, containerToken: CONTAINER_TOKEN, tokenFile, log: (l) => logs.push(l) });
  base = `http://127.0.0.1:${await receiver.listen(0, '127.0.0.1')}`;
});

afterEach(async () => {
  await receiver.close();
  tmp.cleanup();
});

function pushBody(generation: number, overrides: Record<string, unknown> = {}) {
  return {
    rig_id: RIG,
    dispatch_id: 'd-1',
    token: longToken(generation),
    expires_at: expiresIn(3600),
    username: 'x-access-token',
    generation,
    ...overrides,
  };
}

async function push(body: unknown, bearer: string | null = CONTAINER_TOKEN, path = '/git-token') {
  const res = await fetch(`${base}${path}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...(bearer === null ? {} : { Authorization: `Bearer ${bearer}` }) },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json().catch(() => null)) as Record<string, unknown> | null };
}

describe('repo-connect-token-receiver', () => {
  it('stores a good push in a 0600 file inside a 0700 directory, replacing the file by rename', async () => {
    const first = await push(pushBody(1));
    expect(first).toEqual({ status: 200, body: { stored: true, generation: 1 } });
    const stored = JSON.parse(readFileSync(tokenFile, 'utf8'));
    expect(stored).toMatchObject({
      token: longToken(1),
      username: 'x-access-token',
      generation: 1,
      rig_id: RIG,
      dispatch_id: 'd-1',
      source: 'push',
    });
    expect(statSync(tokenFile).mode & 0o777).toBe(0o600);
    expect(statSync(join(tmp.dir, 'home', '.repo-connect')).mode & 0o777).toBe(0o700);
    const inodeBefore = statSync(tokenFile).ino;

    expect((await push(pushBody(2))).status).toBe(200);
    // A new inode means the content arrived by rename, never by rewriting the file readers hold open.
    expect(statSync(tokenFile).ino).not.toBe(inodeBefore);
    expect(statSync(tokenFile).mode & 0o777).toBe(0o600);
    expect(readdirSync(join(tmp.dir, 'home', '.repo-connect'))).toEqual(['git-token.json']); // no temp or lock file left
    expect(logs.join('\n')).not.toContain('ghs_');
  });

  it('never exposes a half-written file and keeps the newest of concurrent pushes', async () => {
    await push(pushBody(1));
    let reading = true;
    let reads = 0;
    const reader = (async () => {
      while (reading) {
        const record = JSON.parse(readFileSync(tokenFile, 'utf8')); // throws on a torn file
        expect(record.token).toMatch(/^ghs_A+\d+$/);
        reads += 1;
        await new Promise((r) => setImmediate(r));
      }
    })();
    const generations = [7, 3, 12, 5, 9, 2, 11, 4, 10, 6, 8];
    const results = await Promise.all(generations.map((g) => push(pushBody(g))));
    reading = false;
    await reader;
    expect(results.every((r) => r.status === 200)).toBe(true);
    expect(reads).toBeGreaterThan(0);
    expect(JSON.parse(readFileSync(tokenFile, 'utf8'))).toMatchObject({ generation: 12, token: longToken(12) });
  });

  it('acknowledges a stale generation without overwriting the newer token', async () => {
    await push(pushBody(3));
    expect(await push(pushBody(2))).toEqual({ status: 200, body: { stale: true, generation: 3 } });
    expect(JSON.parse(readFileSync(tokenFile, 'utf8'))).toMatchObject({ generation: 3, token: longToken(3) });
    // The same generation again is a retried delivery: accepted.
    expect((await push(pushBody(3, { token: 'ghs_redelivered' }))).body).toEqual({ stored: true, generation: 3 });
  });

  it('lets a new dispatch (another container token) start again at generation 1', async () => {
    await push(pushBody(9));
    const next = receiverLib.createReceiver({ rigId: RIG, containerToken: 'ct_second_dispatch_0123456789', tokenFile });
    const port = await next.listen(0, '127.0.0.1');
    try {
      const res = await fetch(`http://127.0.0.1:${port}/git-token`, {
        method: 'POST',
        headers: { Authorization: 'Bearer ct_second_dispatch_0123456789' },
        body: JSON.stringify(pushBody(1, { dispatch_id: 'd-2', token: 'ghs_new_dispatch' })),
      });
      expect(await res.json()).toEqual({ stored: true, generation: 1 });
      expect(JSON.parse(readFileSync(tokenFile, 'utf8'))).toMatchObject({ generation: 1, token: 'ghs_new_dispatch', dispatch_id: 'd-2' });
    } finally {
      await next.close();
    }
  });

  it('with a container token file, reads it per push: 503 until it exists, then follows a new dispatch without restart', async () => {
    const bearerFile = join(tmp.dir, 'container-token');
    const lazy = receiverLib.createReceiver({ rigId: RIG, containerTokenFile: bearerFile, tokenFile, log: (l) => logs.push(l) });
    const url = `http://127.0.0.1:${await lazy.listen(0, '127.0.0.1')}/git-token`;
    const send = async (bearer: string, body: unknown) => {
      const res = await fetch(url, { method: 'POST', headers: { Authorization: `Bearer ${bearer}` }, body: JSON.stringify(body) });
      return { status: res.status, retryAfter: res.headers.get('retry-after'), body: await res.json() };
    };
    try {
      // The service pushes as soon as it mints; the container may not have its token yet. Not a
      // 404/410, which the service would read as "container gone".
      expect(await send(CONTAINER_TOKEN, pushBody(1))).toEqual({
        status: 503,
        retryAfter: '1',
        body: { error: { code: 'not_ready', message: 'no container token yet' } },
      });
      expect(() => statSync(tokenFile)).toThrow(/ENOENT/);

      writeFileSync(bearerFile, `${CONTAINER_TOKEN}\n`, { mode: 0o600 });
      expect((await send(CONTAINER_TOKEN, pushBody(4))).body).toEqual({ stored: true, generation: 4 });

      // Dispatched again: a new token in the file, the old one refused, generations start over.
      writeFileSync(bearerFile, 'ct_second_dispatch_0123456789\n');
      expect((await send(CONTAINER_TOKEN, pushBody(5))).status).toBe(401);
      expect((await send('ct_second_dispatch_0123456789', pushBody(1, { dispatch_id: 'd-2' }))).body).toEqual({
        stored: true,
        generation: 1,
      });
      expect(JSON.parse(readFileSync(tokenFile, 'utf8'))).toMatchObject({ generation: 1, dispatch_id: 'd-2' });
      expect(logs.join('\n')).not.toContain(CONTAINER_TOKEN);
    } finally {
      await lazy.close();
    }
  });

  it('answers 401 to a missing or wrong bearer and writes nothing', async () => {
    expect((await push(pushBody(1), null)).status).toBe(401);
    const wrong = await push(pushBody(1), `${CONTAINER_TOKEN}x`);
    expect(wrong).toEqual({ status: 401, body: { error: { code: 'unauthorized', message: 'bad bearer token' } } });
    expect((await push(pushBody(1), 'short')).status).toBe(401);
    expect(() => statSync(tokenFile)).toThrow(/ENOENT/);
  });

  it('refuses a push for another rig with 403 naming rig_id', async () => {
    const res = await push(pushBody(1, { rig_id: 'rig-other' }));
    expect(res).toEqual({
      status: 403,
      body: { error: { code: 'wrong_rig', message: 'this container serves another rig', field: 'rig_id' } },
    });
    expect(() => statSync(tokenFile)).toThrow(/ENOENT/);
  });

  it.each([
    ['rig_id', { rig_id: 42 }],
    ['dispatch_id', { dispatch_id: undefined }],
    ['token', { token: '' }],
    ['token', { token: 'ghs_x\npassword=evil' }],
    ['expires_at', { expires_at: 'tomorrow' }],
    ['expires_at', { expires_at: 1_800_000_000 }],
    ['username', { username: 'x-access-token\r\n' }],
    ['generation', { generation: '2' }],
    ['generation', { generation: 0 }],
    ['generation', { generation: 1.5 }],
  ])('answers 400 naming %s for %j', async (field, overrides) => {
    const res = await push(pushBody(1, overrides));
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ error: { code: 'invalid_request', field } });
    expect(() => statSync(tokenFile)).toThrow(/ENOENT/);
  });

  it('answers 400 to a body that is not a JSON object, without quoting it', async () => {
    const notJson = await push('{"token":"ghs_secret_in_broken_json",');
    expect(notJson).toEqual({ status: 400, body: { error: { code: 'invalid_request', message: 'body is not valid JSON' } } });
    expect((await push('[1,2]')).body).toEqual({ error: { code: 'invalid_request', message: 'body must be a JSON object' } });
  });

  it('answers 413 to a body over 64 KiB', async () => {
    const res = await push(pushBody(1, { padding: 'x'.repeat(receiverLib.MAX_BODY_BYTES) }));
    expect(res.status).toBe(413);
    expect(() => statSync(tokenFile)).toThrow(/ENOENT/);
  });

  it('routes: 404 elsewhere, 405 for other methods, 200 on /healthz', async () => {
    expect((await push(pushBody(1), CONTAINER_TOKEN, '/other')).status).toBe(404);
    const get = await fetch(`${base}/git-token`);
    expect(get.status).toBe(405);
    expect(get.headers.get('allow')).toBe('POST');
    const health = await fetch(`${base}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ ok: true });
  });
});

describe('repo-connect-token-receiver bin', () => {
  it('serves on the configured port, keeps tokens out of its output, and exits 0 on SIGTERM', async () => {
    const child = spawn(process.execPath, [RECEIVER_BIN], {
      env: {
        PATH: process.env.PATH,
        HOME: tmp.dir,
        REPO_CONNECT_RIG_ID: RIG,
        REPO_CONNECT_CONTAINER_TOKEN: CONTAINER_TOKEN,
        REPO_CONNECT_RECEIVER_PORT: '0',
        REPO_CONNECT_RECEIVER_HOST: '127.0.0.1',
      },
    });
    let output = '';
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    const port = await new Promise<number>((resolve, reject) => {
      child.stdout.on('data', (c: Buffer) => {
        output += c.toString();
        const m = /listening on 127\.0\.0\.1:(\d+)/.exec(output);
        if (m) resolve(Number(m[1]));
      });
      child.on('exit', () => reject(new Error(`receiver exited: ${output}`)));
    });
    const res = await fetch(`http://127.0.0.1:${port}/git-token`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${CONTAINER_TOKEN}` },
      body: JSON.stringify(pushBody(1)),
    });
    expect(res.status).toBe(200);
    const file = join(tmp.dir, '.repo-connect', 'git-token.json');
    expect((await tokenFileLib.readTokenFile(file))?.token).toBe(longToken(1));

    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(output).toContain('stored generation 1');
    expect(output).not.toContain('ghs_');
    expect(output).not.toContain(CONTAINER_TOKEN);
  });

  it('starts before its container token file exists and stores pushes once it does', async () => {
    const bearerFile = join(tmp.dir, 'container-token');
    const child = spawn(process.execPath, [RECEIVER_BIN], {
      env: {
        PATH: process.env.PATH,
        HOME: tmp.dir,
        REPO_CONNECT_RIG_ID: RIG,
        REPO_CONNECT_CONTAINER_TOKEN_FILE: bearerFile,
        REPO_CONNECT_RECEIVER_PORT: '0',
        REPO_CONNECT_RECEIVER_HOST: '127.0.0.1',
      },
    });
    let output = '';
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    const port = await new Promise<number>((resolve, reject) => {
      child.stdout.on('data', (c: Buffer) => {
        output += c.toString();
        const m = /listening on 127\.0\.0\.1:(\d+)/.exec(output);
        if (m) resolve(Number(m[1]));
      });
      child.on('exit', () => reject(new Error(`receiver exited: ${output}`)));
    });
    const send = () =>
      fetch(`http://127.0.0.1:${port}/git-token`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${CONTAINER_TOKEN}` },
        body: JSON.stringify(pushBody(1)),
      });
    expect((await send()).status).toBe(503);
    writeFileSync(bearerFile, CONTAINER_TOKEN, { mode: 0o600 });
    expect((await send()).status).toBe(200);

    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(output).toContain('no container token in');
    expect(output).not.toContain(CONTAINER_TOKEN);
  });

  it('exits 2 naming every missing variable', async () => {
    const child = spawn(process.execPath, [RECEIVER_BIN], { env: { PATH: process.env.PATH, HOME: tmp.dir } });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
    expect(code).toBe(2);
    expect(stderr).toContain('REPO_CONNECT_RIG_ID is required');
    expect(stderr).toContain('REPO_CONNECT_CONTAINER_TOKEN (or REPO_CONNECT_CONTAINER_TOKEN_FILE) is required');
  });
});
