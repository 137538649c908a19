// @ts-check
'use strict';
// Validation of token payloads, shared by the receiver (pushes) and the helper (pull answers).
// The strictness is about safety, not pedantry: the helper prints these values into git's
// line-based credential protocol, so a newline in a token or username would let whoever controls
// the payload inject extra attributes (for example a `url=` or a second `password=`).

/**
 * @typedef {object} TokenPayload
 * @property {string} token
 * @property {string | null} expires_at ISO-8601; null only for a static token
 * @property {string} username
 * @property {number} generation 1, 2, ... per dispatch
 */

/** @typedef {{ field: string, message: string }} PayloadProblem */

// No control characters (which include CR, LF and NUL) anywhere in a value git will read.
const CONTROL = /[\u0000-\u001f\u007f]/;
const ISO_8601 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$/;
// GitHub tokens run past 500 characters; this bound only stops abuse.
const MAX_TOKEN_LENGTH = 16 * 1024;

/**
 * Checks the fields every token payload carries; returns the first bad field or null.
 * @param {unknown} body
 * @returns {PayloadProblem | null}
 */
function checkTokenPayload(body) {
  if (!body || typeof body !== 'object' || Array.isArray(body)) return { field: '', message: 'body must be a JSON object' };
  const b = /** @type {Record<string, unknown>} */ (body);
  if (typeof b.token !== 'string' || b.token === '' || b.token.length > MAX_TOKEN_LENGTH || CONTROL.test(b.token)) {
    return { field: 'token', message: 'token must be a non-empty string without control characters' };
  }
  if (
    b.expires_at !== null &&
    !(typeof b.expires_at === 'string' && ISO_8601.test(b.expires_at) && Number.isFinite(Date.parse(b.expires_at)))
  ) {
    return { field: 'expires_at', message: 'expires_at must be an ISO-8601 date-time or null' };
  }
  if (typeof b.username !== 'string' || b.username === '' || b.username.length > 256 || CONTROL.test(b.username)) {
    return { field: 'username', message: 'username must be a non-empty string without control characters' };
  }
  if (typeof b.generation !== 'number' || !Number.isSafeInteger(b.generation) || b.generation < 1) {
    return { field: 'generation', message: 'generation must be a positive integer' };
  }
  return null;
}

/**
 * Checks a push body: the token fields plus the rig and dispatch it is addressed to.
 * @param {unknown} body
 * @returns {PayloadProblem | null}
 */
function checkPushBody(body) {
  if (!body || typeof body !== 'object' || Array.isArray(body)) return { field: '', message: 'body must be a JSON object' };
  const b = /** @type {Record<string, unknown>} */ (body);
  for (const field of ['rig_id', 'dispatch_id']) {
    const v = b[field];
    if (typeof v !== 'string' || v === '' || v.length > 200 || CONTROL.test(v))
      return { field, message: `${field} must be a non-empty string` };
  }
  return checkTokenPayload(body);
}

module.exports = { checkTokenPayload, checkPushBody };
