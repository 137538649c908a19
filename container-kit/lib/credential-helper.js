// @ts-check
'use strict';
// git's credential helper for repo-connect (protocol: git-credential(1), gitcredentials(7)).
// Every outcome exits 0: an empty answer makes git move to the next helper or fail with an
// authentication error, which says more to the user than a crashed helper. Diagnostics go to
// stderr as one line, scrubbed of every secret the process knows.
const { loadConfig, missingSettings, errorCode } = require('./config');
const { pullToken } = require('./pull');
const { eraseToken, isFresh, readTokenFile, sha256Hex, writeTokenRecord } = require('./token-file');

const PREFIX = 'git-credential-repo-connect: ';
const MAX_REQUEST_BYTES = 64 * 1024;

/** @typedef {{ stdout: string, stderr: string }} HelperOutput */
/** @typedef {{ token: string, username: string, expires_at: string | null }} Answerable */

/**
 * Runs one helper operation (`get`, `erase`, `store`, ...) over a request text; never throws.
 * @param {{ operation: string | undefined, input: string, env: NodeJS.ProcessEnv, timeoutMs?: number }} args
 * @returns {Promise<HelperOutput>}
 */
async function runCredentialHelper({ operation, input, env, timeoutMs }) {
  /** @type {string[]} */
  const secrets = [];
  const out = { stdout: '', stderr: '' };
  const say = (/** @type {string} */ line) => {
    out.stderr += `${PREFIX}${redact(line, secrets)}\n`;
  };
  try {
    const request = parseRequest(input);
    if (request.password) secrets.push(request.password);
    // `store` is a no-op (the service is the source of truth); unknown operations are ignored, as
    // gitcredentials(7) asks, so newer gits can add operations without breaking this helper.
    if (operation !== 'get' && operation !== 'erase') return out;

    const { config, problems } = loadConfig(env);
    if (config.containerToken) secrets.push(config.containerToken);
    if (problems.length) {
      say(problems.join('; '));
      return out;
    }
    // Only the configured hosts, and only over https unless a host was configured as http://host:
    // a token must not answer a look-alike host, nor travel in the clear.
    if (config.gitHosts.length === 0) {
      say('REPO_CONNECT_GIT_HOST is not set: the helper answers no host until it names the git host(s)');
      return out;
    }
    const host = (request.host ?? '').toLowerCase();
    if (!config.gitHosts.includes(host)) return out;
    if (request.protocol !== 'https' && !(request.protocol === 'http' && config.httpHosts.includes(host))) {
      say(
        `refusing ${request.protocol ?? 'no'} protocol for ${host}: only https (or a host set as http://${host} in REPO_CONNECT_GIT_HOST)`,
      );
      return out;
    }

    if (operation === 'erase') {
      if (request.password) await eraseToken(config.tokenFile, request.password);
      return out;
    }
    const found = await getToken(config, say, secrets, timeoutMs);
    if (found) out.stdout = formatAnswer(found);
  } catch (err) {
    out.stdout = '';
    say(`internal error (${errorCode(err)})`);
  }
  return out;
}

/**
 * The cached token while it is fresh, else a pulled one (cached for the next call).
 * @param {import('./config').KitConfig} config
 * @param {(line: string) => void} say
 * @param {string[]} secrets grows with every token seen, for redaction
 * @param {number | undefined} timeoutMs
 * @returns {Promise<Answerable | null>}
 */
async function getToken(config, say, secrets, timeoutMs) {
  const key = config.containerToken ? sha256Hex(config.containerToken) : null;
  let cached = null;
  try {
    cached = await readTokenFile(config.tokenFile);
  } catch (err) {
    say(`cannot read ${config.tokenFile} (${errorCode(err)})`);
  }
  if (cached && typeof cached.token === 'string') secrets.push(cached.token);
  // A file left by an earlier dispatch or another rig may hold a revoked token: pull instead.
  const ours =
    cached &&
    (!key || !cached.container_token_sha256 || cached.container_token_sha256 === key) &&
    (!config.rigId || !cached.rig_id || cached.rig_id === config.rigId);
  if (ours && isFresh(cached, config.minValiditySeconds)) return /** @type {Answerable} */ (cached);

  const missing = missingSettings(config, ['serviceUrl', 'rigId', 'containerToken']);
  if (missing.length) {
    say(`no fresh token in ${config.tokenFile} and cannot pull one: set ${missing.join(', ')}`);
    return null;
  }
  const pulled = await pullToken({
    serviceUrl: /** @type {string} */ (config.serviceUrl),
    rigId: /** @type {string} */ (config.rigId),
    containerToken: /** @type {string} */ (config.containerToken),
    // What this dispatch already holds (a push the pulling API instance may not have heard of yet).
    heldGeneration: cached && key && cached.container_token_sha256 === key ? cached.generation : undefined,
    timeoutMs,
  });
  if (!pulled.ok) {
    say(pulled.reason);
    return null;
  }
  secrets.push(pulled.payload.token);
  try {
    const { written, current } = await writeTokenRecord(config.tokenFile, {
      ...pulled.payload,
      rig_id: config.rigId,
      dispatch_id: null,
      container_token_sha256: key,
      source: 'pull',
      written_at: new Date().toISOString(),
    });
    // A push newer than our pull landed meanwhile; for GitLab the pulled token may already be dead.
    if (!written && typeof current.token === 'string') {
      secrets.push(current.token);
      return /** @type {Answerable} */ (current);
    }
  } catch (err) {
    // Still answer: git needs the token now; the next call simply pulls again.
    say(`could not cache the token in ${config.tokenFile} (${errorCode(err)})`);
  }
  return pulled.payload;
}

/**
 * Parses git's `key=value` lines up to the first blank line. Array keys (`capability[]`, `wwwauth[]`)
 * keep their last value; this helper reads none of them.
 * @param {string} text
 * @returns {Record<string, string>}
 */
function parseRequest(text) {
  /** @type {Record<string, string>} */
  const request = {};
  for (const line of text.split('\n')) {
    const l = line.replace(/\r$/, '');
    if (l === '') break;
    const eq = l.indexOf('=');
    if (eq > 0) request[l.slice(0, eq)] = l.slice(eq + 1);
  }
  return request;
}

/**
 * The answer git reads; `password_expiry_utc` (git >= 2.40) lets git drop the token on its own when it lapses.
 * @param {Answerable} t
 */
function formatAnswer(t) {
  let text = `username=${t.username}\npassword=${t.token}\n`;
  if (t.expires_at) text += `password_expiry_utc=${Math.floor(Date.parse(t.expires_at) / 1000)}\n`;
  return text;
}

/** Replaces every known secret in a diagnostic line: belt and braces for messages relayed from elsewhere. */
function redact(/** @type {string} */ line, /** @type {string[]} */ secrets) {
  let safe = line.replace(/[\r\n]+/g, ' ');
  for (const s of secrets) if (s.length >= 4) safe = safe.split(s).join('[redacted]');
  return safe;
}

/**
 * Reads the request from git: up to a blank line or EOF. A TTY is never read, so the helper can
 * never sit waiting on a human (git always gives helpers a pipe).
 * @param {NodeJS.ReadStream | import('node:stream').Readable} stream
 * @returns {Promise<string>}
 */
function readRequest(stream) {
  if ('isTTY' in stream && stream.isTTY) return Promise.resolve('');
  return new Promise((resolve) => {
    let text = '';
    const finish = () => {
      stream.removeAllListeners('data');
      stream.destroy();
      resolve(text);
    };
    stream.setEncoding('utf8');
    stream.on('data', (/** @type {string} */ chunk) => {
      text += chunk;
      if (text.startsWith('\n') || text.includes('\n\n') || text.length > MAX_REQUEST_BYTES) finish();
    });
    stream.on('end', () => resolve(text));
    stream.on('error', () => resolve(text));
  });
}

module.exports = { runCredentialHelper, parseRequest, formatAnswer, readRequest };
