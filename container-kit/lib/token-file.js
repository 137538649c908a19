// @ts-check
'use strict';
// The token file: the one place in the container where the git token rests. Both the receiver
// (pushes) and the credential helper (pulls, erase) write it, possibly at the same moment, so every
// change is read-compare-write under a lock file and lands by rename: readers see the old file or
// the new one, never half of one, and an older generation can never replace a newer one.
const crypto = require('node:crypto');
const fsp = require('node:fs/promises');
const path = require('node:path');

/**
 * @typedef {object} TokenRecord
 * @property {string} [token]            absent after `erase`
 * @property {string} [username]
 * @property {string | null} [expires_at]
 * @property {number} generation
 * @property {string | null} [rig_id]
 * @property {string | null} [dispatch_id]
 * @property {string | null} container_token_sha256 which dispatch the generation counts for
 * @property {'push' | 'pull'} [source]
 * @property {string} written_at
 */

const LOCK_WAIT_MS = 3_000;
// A writer holds the lock for milliseconds; one this old belongs to a process that died holding it.
const LOCK_STALE_MS = 10_000;

/** SHA-256 hex of a string. */
function sha256Hex(/** @type {string} */ s) {
  return crypto.createHash('sha256').update(s, 'utf8').digest('hex');
}

/** Compares two secrets in constant time; digests first so unequal lengths leak nothing either. */
function sameSecret(/** @type {string} */ a, /** @type {string} */ b) {
  const da = crypto.createHash('sha256').update(a, 'utf8').digest();
  const db = crypto.createHash('sha256').update(b, 'utf8').digest();
  return crypto.timingSafeEqual(da, db);
}

/**
 * Reads the token file; null when it is missing or unreadable as a record (a corrupt file is
 * treated like no file, so the next pull or push replaces it).
 * @param {string} file
 * @returns {Promise<TokenRecord | null>}
 */
async function readTokenFile(file) {
  let text;
  try {
    text = await fsp.readFile(file, 'utf8');
  } catch (err) {
    if (/** @type {NodeJS.ErrnoException} */ (err).code === 'ENOENT') return null;
    throw err;
  }
  try {
    const record = JSON.parse(text);
    if (record && typeof record === 'object' && Number.isSafeInteger(record.generation)) return record;
  } catch {
    // fall through: corrupt
  }
  return null;
}

/**
 * Is the cached token usable for at least `minValiditySeconds` more? Static tokens (no expiry) always are.
 * @param {TokenRecord | null} record
 * @param {number} minValiditySeconds
 * @param {number} [now]
 */
function isFresh(record, minValiditySeconds, now = Date.now()) {
  if (!record || typeof record.token !== 'string' || record.token === '') return false;
  if (record.expires_at === null) return true;
  if (typeof record.expires_at !== 'string') return false;
  return Date.parse(record.expires_at) - now > minValiditySeconds * 1000;
}

/**
 * Writes `record` unless the file holds a newer generation of the same dispatch. Generations only
 * compare within one dispatch (same container token): a re-dispatched container starts again at 1.
 * @param {string} file
 * @param {TokenRecord} record
 * @returns {Promise<{ written: boolean, current: TokenRecord }>} current: what the file holds afterwards
 */
async function writeTokenRecord(file, record) {
  return withLock(file, async () => {
    const current = await readTokenFile(file);
    if (current && current.container_token_sha256 === record.container_token_sha256 && current.generation > record.generation) {
      return { written: false, current };
    }
    await atomicWrite(file, `${JSON.stringify(record)}\n`);
    return { written: true, current: record };
  });
}

/**
 * Forgets the cached token if it is `password` (git rejected it). The generation stays so a late,
 * older push cannot reinstall what git just rejected.
 * @param {string} file
 * @param {string} password
 * @returns {Promise<boolean>} whether a token was forgotten
 */
async function eraseToken(file, password) {
  // Most erases come from another helper's credential or an empty cache: no lock, no directory, for those.
  const peek = await readTokenFile(file);
  if (!peek || typeof peek.token !== 'string') return false;
  return withLock(file, async () => {
    const current = await readTokenFile(file);
    if (!current || typeof current.token !== 'string' || !sameSecret(current.token, password)) return false;
    const { token: _t, username: _u, expires_at: _e, ...rest } = current;
    await atomicWrite(file, `${JSON.stringify({ ...rest, written_at: new Date().toISOString() })}\n`);
    return true;
  });
}

/**
 * Temp file in the same directory (so rename is atomic), created 0600 before any byte is written,
 * fsynced, renamed over the target; the directory is fsynced so the rename survives a crash.
 * @param {string} file
 * @param {string} content
 */
async function atomicWrite(file, content) {
  const dir = path.dirname(file);
  await ensureDir(dir);
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${crypto.randomBytes(6).toString('hex')}.tmp`);
  const handle = await fsp.open(tmp, 'wx', 0o600);
  try {
    await handle.writeFile(content, 'utf8');
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await fsp.rename(tmp, file);
  } catch (err) {
    await fsp.rm(tmp, { force: true });
    throw err;
  }
  try {
    const d = await fsp.open(dir, 'r');
    await d.sync().finally(() => d.close());
  } catch {
    // Some filesystems refuse fsync on a directory; the rename itself already happened.
  }
}

/** Creates the token directory owner-only; an existing directory is left as its owner made it. */
async function ensureDir(/** @type {string} */ dir) {
  await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
}

/**
 * Removes `lock` if it is still stale, taking turns with other breakers through `<lock>.break`:
 * two processes that both saw the same stale lock would otherwise each remove "it", the second
 * removing the fresh lock the first had just taken, and both would write at once.
 * @param {string} lock
 * @returns {Promise<boolean>} whether this call removed it
 */
async function breakStaleLock(lock) {
  const breaker = `${lock}.break`;
  try {
    await (await fsp.open(breaker, 'wx', 0o600)).close();
  } catch (err) {
    if (/** @type {NodeJS.ErrnoException} */ (err).code !== 'EEXIST') throw err;
    // Another process is breaking it; a break lock left by one that died is cleared when stale.
    const stat = await fsp.stat(breaker).catch(() => null);
    if (stat && Date.now() - stat.mtimeMs > LOCK_STALE_MS) await fsp.rm(breaker, { force: true });
    return false;
  }
  try {
    const stat = await fsp.stat(lock).catch(() => null);
    if (!stat || Date.now() - stat.mtimeMs <= LOCK_STALE_MS) return false;
    await fsp.rm(lock, { force: true });
    return true;
  } finally {
    await fsp.rm(breaker, { force: true });
  }
}

/**
 * Runs `fn` holding `<file>.lock` (O_EXCL create), so receiver and helper processes take turns.
 * A lock older than LOCK_STALE_MS belongs to a process that died holding it and is broken; the
 * holder removes the lock only while it is still its own.
 * @template T
 * @param {string} file
 * @param {() => Promise<T>} fn
 * @returns {Promise<T>}
 */
async function withLock(file, fn) {
  await ensureDir(path.dirname(file));
  const lock = `${file}.lock`;
  const deadline = Date.now() + LOCK_WAIT_MS;
  // Written into the lock, so the holder removes only its own (an inode number can be reused at once).
  const mine = `${process.pid}:${crypto.randomBytes(12).toString('hex')}`;
  for (;;) {
    try {
      const handle = await fsp.open(lock, 'wx', 0o600);
      const wrote = await handle.writeFile(mine, 'utf8').then(
        () => null,
        (/** @type {unknown} */ e) => e,
      );
      await handle.close();
      if (wrote) {
        await fsp.rm(lock, { force: true }); // taken but not ours to recognise: let it go
        throw wrote;
      }
      break;
    } catch (err) {
      if (/** @type {NodeJS.ErrnoException} */ (err).code !== 'EEXIST') throw err;
      const stat = await fsp.stat(lock).catch(() => null);
      // Broken here: try again at once; else wait like any other turn.
      if (stat && Date.now() - stat.mtimeMs > LOCK_STALE_MS && (await breakStaleLock(lock))) continue;
      if (Date.now() > deadline) throw Object.assign(new Error('token file is locked'), { code: 'ELOCKED' });
      await new Promise((r) => setTimeout(r, 10 + Math.random() * 20));
    }
  }
  try {
    return await fn();
  } finally {
    const holder = await fsp.readFile(lock, 'utf8').catch(() => null);
    if (holder === mine) await fsp.rm(lock, { force: true });
  }
}

module.exports = { readTokenFile, writeTokenRecord, eraseToken, isFresh, sameSecret, sha256Hex, atomicWrite };
