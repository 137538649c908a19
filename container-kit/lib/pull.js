// @ts-check
'use strict';
// Pulls the current token from repo-connect. Uses node:http(s) rather than fetch: fetch prints an
// ExperimentalWarning on Node 18, and anything on stderr lands in front of the git user.
// Every failure becomes a fixed, token-free sentence: response bodies and parser messages are never
// echoed whole, because a body that failed to parse may still contain the token.
const http = require('node:http');
const https = require('node:https');
const { checkTokenPayload } = require('./payload');

const MAX_RESPONSE_BYTES = 64 * 1024;

/**
 * @typedef {object} PullOptions
 * @property {string} serviceUrl
 * @property {string} rigId
 * @property {string} containerToken
 * @property {number} [timeoutMs]          whole pull, retries included; default 10 s
 * @property {number} [maxRetryAfterSeconds] a 429 asking to wait longer than this is not retried
 * @property {number} [heldGeneration]     the generation this container already holds: the service
 *                                         then never answers with an older one
 */

/** @typedef {{ ok: true, payload: import('./payload').TokenPayload } | { ok: false, reason: string }} PullResult */

/**
 * Asks the service for the rig's current token; retries once after a short 429.
 * @param {PullOptions} opts
 * @returns {Promise<PullResult>}
 */
async function pullToken(opts) {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const deadline = Date.now() + timeoutMs;
  const url = new URL(`${opts.serviceUrl}/api/internal/rigs/${encodeURIComponent(opts.rigId)}/git-token`);
  const where = url.origin;
  for (let attempt = 1; ; attempt++) {
    let res;
    try {
      res = await post(url, opts.containerToken, opts.heldGeneration, deadline - Date.now());
    } catch (err) {
      const code = /** @type {NodeJS.ErrnoException} */ (err).code;
      if (code === 'ETIMEDOUT') return fail(`repo-connect at ${where} did not answer within ${timeoutMs / 1000} s`);
      return fail(`cannot reach repo-connect at ${where} (${typeof code === 'string' ? code : 'network error'})`);
    }
    if (res.status === 200) {
      let body;
      try {
        body = JSON.parse(res.body);
      } catch {
        return fail('repo-connect answered 200 with a body that is not JSON');
      }
      const bad = checkTokenPayload(body);
      if (bad) return fail(`repo-connect answered 200 with an unusable ${bad.field || 'body'}`);
      return {
        ok: true,
        payload: { token: body.token, expires_at: body.expires_at, username: body.username, generation: body.generation },
      };
    }
    if (res.status === 429) {
      const wait = retryAfterSeconds(res.retryAfter);
      const max = opts.maxRetryAfterSeconds ?? 5;
      if (attempt === 1 && wait !== null && wait <= max && Date.now() + wait * 1000 < deadline) {
        await new Promise((r) => setTimeout(r, wait * 1000));
        continue;
      }
      return fail(`rate limited by repo-connect (429${wait === null ? '' : `, retry after ${wait} s`})`);
    }
    return fail(describeStatus(res.status, res.body));
  }
}

/** @param {string} reason @returns {PullResult} */
function fail(reason) {
  return { ok: false, reason };
}

/**
 * One sentence for a non-200 answer, in the words of the contract.
 * @param {number} status
 * @param {string} body
 */
function describeStatus(status, body) {
  if (status === 401) return 'container token not recognised by repo-connect (401)';
  if (status === 403) return 'container token belongs to another rig (403)';
  if (status === 404) return 'rig not found, or REPO_CONNECT_URL is wrong (404)';
  if (status === 410) return 'dispatch ended (410)';
  let code = '';
  let message = '';
  try {
    const err = JSON.parse(body).error;
    if (err && typeof err.code === 'string' && /^[a-z0-9_]{1,64}$/.test(err.code)) code = err.code;
    // The service's messages are written for users and carry no secrets; still, keep them one short line.
    if (err && typeof err.message === 'string') message = err.message.replace(/[\u0000-\u001f\u007f]+/g, ' ').slice(0, 200);
  } catch {
    // not the service's error shape; the status says enough
  }
  const detail = [code, message].filter(Boolean).join(': ');
  return `repo-connect could not supply a token (${status}${detail ? `, ${detail}` : ''})`;
}

/**
 * Retry-After is either delta-seconds or an HTTP date; null when absent or unreadable.
 * @param {string | undefined} value
 * @returns {number | null}
 */
function retryAfterSeconds(value) {
  if (value === undefined) return null;
  if (/^\s*\d+\s*$/.test(value)) return Number(value);
  const at = Date.parse(value);
  return Number.isFinite(at) ? Math.max(0, Math.ceil((at - Date.now()) / 1000)) : null;
}

/**
 * POSTs with the bearer (and the held generation, when there is one) and no body: the service
 * answers a bodiless pull of a fresh lease on its fastest path. Resolves with status, a capped body
 * and Retry-After.
 * @param {URL} url
 * @param {string} bearer
 * @param {number | undefined} heldGeneration
 * @param {number} timeoutMs
 * @returns {Promise<{ status: number, body: string, retryAfter: string | undefined }>}
 */
function post(url, bearer, heldGeneration, timeoutMs) {
  const client = url.protocol === 'https:' ? https : http;
  /** @type {Record<string, string | number>} */
  const headers = { Authorization: `Bearer ${bearer}`, 'Content-Length': 0, Accept: 'application/json' };
  if (heldGeneration !== undefined && Number.isSafeInteger(heldGeneration) && heldGeneration > 0) {
    headers['Repo-Connect-Generation'] = String(heldGeneration);
  }
  return new Promise((resolve, reject) => {
    const req = client.request(url, { method: 'POST', headers });
    const timer = setTimeout(() => req.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })), Math.max(0, timeoutMs));
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.on('response', (res) => {
      /** @type {Buffer[]} */
      const chunks = [];
      let size = 0;
      res.on('data', (/** @type {Buffer} */ c) => {
        size += c.length;
        if (size <= MAX_RESPONSE_BYTES) chunks.push(c);
      });
      res.on('end', () => {
        clearTimeout(timer);
        const retryAfter = res.headers['retry-after'];
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), retryAfter });
      });
      res.on('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
    req.end();
  });
}

module.exports = { pullToken, retryAfterSeconds };
