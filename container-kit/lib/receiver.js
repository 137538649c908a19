// @ts-check
'use strict';
// The push receiver: repo-connect POSTs each new token here as soon as it is minted, so git in the
// container rarely has to pull. Everything answered here is read by the service's workflow, which
// treats any 2xx as delivered and 404/410 as "container gone", so those two are reserved for paths.
const fsp = require('node:fs/promises');
const http = require('node:http');
const { checkPushBody } = require('./payload');
const { sameSecret, sha256Hex, writeTokenRecord } = require('./token-file');

const MAX_BODY_BYTES = 64 * 1024;

/**
 * @typedef {object} ReceiverOptions
 * @property {string} rigId           pushes for any other rig are refused (403)
 * @property {string} [containerToken]  the bearer the service presents, or:
 * @property {string} [containerTokenFile] a file holding it, read on every push: the receiver can
 *   start before the dispatch exists (a container's address is usually known only once it runs)
 *   and follows a new dispatch without a restart
 * @property {string} tokenFile
 * @property {(line: string) => void} [log] one line per event; never given a token
 */

/**
 * Builds the receiver's HTTP server without listening.
 * @param {ReceiverOptions} opts
 */
function createReceiver(opts) {
  const log = opts.log ?? (() => undefined);

  /** The bearer pushes must carry; undefined while its file is missing or empty. */
  async function expectedBearer() {
    if (opts.containerToken !== undefined) return opts.containerToken;
    try {
      return (await fsp.readFile(/** @type {string} */ (opts.containerTokenFile), 'utf8')).trim() || undefined;
    } catch (err) {
      if (/** @type {NodeJS.ErrnoException} */ (err).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err) => {
      log(`could not store a push (${err && err.code ? err.code : 'error'})`);
      if (!res.headersSent) send(res, 500, problem('internal', 'could not store the token'));
    });
  });
  // The service sends one small JSON body; a slow client has no business holding a socket.
  server.headersTimeout = 10_000;
  server.requestTimeout = 15_000;

  /** @param {http.IncomingMessage} req @param {http.ServerResponse} res */
  async function handle(req, res) {
    const { pathname } = new URL(req.url ?? '/', 'http://receiver');
    if (pathname === '/healthz') {
      if (req.method === 'GET' || req.method === 'HEAD') return send(res, 200, { ok: true });
      return send(res, 405, problem('method_not_allowed', 'use GET'), { Allow: 'GET, HEAD' });
    }
    if (pathname !== '/git-token') return send(res, 404, problem('not_found', 'no such path'));
    if (req.method !== 'POST') return send(res, 405, problem('method_not_allowed', 'use POST'), { Allow: 'POST' });

    const expected = await expectedBearer();
    if (expected === undefined) {
      // Not 404/410 (those end the dispatch): the service retries a 503 until the file is there.
      log(`refused a push: no container token in ${opts.containerTokenFile} yet`);
      return send(res, 503, problem('not_ready', 'no container token yet'), { 'Retry-After': '1' });
    }
    const auth = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
    if (!auth || !sameSecret(auth[1], expected)) {
      log(`refused a push with a bad bearer from ${req.socket.remoteAddress ?? 'unknown'}`);
      return send(res, 401, problem('unauthorized', 'bad bearer token'), { 'WWW-Authenticate': 'Bearer' });
    }

    const raw = await readBody(req);
    if (raw === null) return send(res, 413, problem('payload_too_large', `body exceeds ${MAX_BODY_BYTES} bytes`), { Connection: 'close' });
    let body;
    try {
      body = JSON.parse(raw);
    } catch {
      // Never echo the parser's message: it quotes the body, which holds the token.
      return send(res, 400, problem('invalid_request', 'body is not valid JSON'));
    }
    const bad = checkPushBody(body);
    if (bad) return send(res, 400, problem('invalid_request', bad.message, bad.field));
    // 403, like the pull endpoint's answer for another rig: the bearer is right, the target is not ours.
    if (body.rig_id !== opts.rigId) return send(res, 403, problem('wrong_rig', 'this container serves another rig', 'rig_id'));

    const { written, current } = await writeTokenRecord(opts.tokenFile, {
      token: body.token,
      username: body.username,
      expires_at: body.expires_at,
      generation: body.generation,
      rig_id: body.rig_id,
      dispatch_id: body.dispatch_id,
      container_token_sha256: sha256Hex(expected),
      source: 'push',
      written_at: new Date().toISOString(),
    });
    if (!written) {
      log(`ignored stale generation ${body.generation} (holding ${current.generation})`);
      return send(res, 200, { stale: true, generation: current.generation });
    }
    log(`stored generation ${body.generation} for dispatch ${body.dispatch_id}, expires ${body.expires_at ?? 'never'}`);
    return send(res, 200, { stored: true, generation: body.generation });
  }

  return {
    server,
    /**
     * Starts listening; resolves with the bound port (useful with port 0).
     * @param {number} port
     * @param {string} host
     * @returns {Promise<number>}
     */
    listen(port, host) {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          const address = server.address();
          resolve(typeof address === 'object' && address ? address.port : port);
        });
      });
    },
    /** Stops accepting connections and resolves once in-flight requests finish. */
    close() {
      return new Promise((resolve) => {
        server.close(() => resolve(undefined));
        server.closeIdleConnections();
      });
    },
  };
}

/**
 * Reads the body as UTF-8; null once it passes the size limit (the rest is discarded).
 * @param {http.IncomingMessage} req
 * @returns {Promise<string | null>}
 */
function readBody(req) {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > MAX_BODY_BYTES) return Promise.resolve(null);
  return new Promise((resolve, reject) => {
    /** @type {Buffer[]} */
    const chunks = [];
    let size = 0;
    const onData = (/** @type {Buffer} */ chunk) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        req.off('data', onData);
        req.resume();
        resolve(null);
        return;
      }
      chunks.push(chunk);
    };
    req.on('data', onData);
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/**
 * @param {string} code
 * @param {string} message
 * @param {string} [field]
 */
function problem(code, message, field) {
  // A problem with the body as a whole (not JSON, not an object) names no field.
  return { error: field ? { code, message, field } : { code, message } };
}

/**
 * @param {http.ServerResponse} res
 * @param {number} status
 * @param {unknown} body
 * @param {Record<string, string>} [headers]
 */
function send(res, status, body, headers = {}) {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(text),
    'Cache-Control': 'no-store',
    ...headers,
  });
  res.end(text);
}

module.exports = { createReceiver, MAX_BODY_BYTES };
