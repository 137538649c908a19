// @ts-check
'use strict';
// Settings for both kit programs, read from the environment. Problems are collected rather than
// thrown so a program can name every bad variable in one message. No value read here is ever
// printed: the container token is a secret too.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

/**
 * @typedef {object} KitConfig
 * @property {string | undefined} serviceUrl     REPO_CONNECT_URL without a trailing slash
 * @property {string | undefined} rigId          REPO_CONNECT_RIG_ID
 * @property {string | undefined} containerToken REPO_CONNECT_CONTAINER_TOKEN or the _FILE's content
 * @property {string | undefined} containerTokenFile REPO_CONNECT_CONTAINER_TOKEN_FILE, resolved
 * @property {string} tokenFile                  REPO_CONNECT_TOKEN_FILE
 * @property {string[]} gitHosts                 REPO_CONNECT_GIT_HOST's hosts, lower-cased; the helper answers only these
 * @property {string[]} httpHosts                those of them written as http://host: plain http allowed
 * @property {number} minValiditySeconds         REPO_CONNECT_MIN_VALIDITY_SECONDS
 * @property {number} receiverPort               REPO_CONNECT_RECEIVER_PORT
 * @property {string} receiverHost               REPO_CONNECT_RECEIVER_HOST
 */

/** The variable that supplies each setting, for messages. */
const VARIABLE = {
  serviceUrl: 'REPO_CONNECT_URL',
  rigId: 'REPO_CONNECT_RIG_ID',
  containerToken: 'REPO_CONNECT_CONTAINER_TOKEN (or REPO_CONNECT_CONTAINER_TOKEN_FILE)',
};

/**
 * Reads the kit's settings from `env`; `problems` names each variable that is set but unusable.
 * With `lazyContainerToken` the container token file is not read here (the receiver reads it on
 * every push, so it can start before the dispatch exists and follow a new one).
 * @param {NodeJS.ProcessEnv} env
 * @param {{ lazyContainerToken?: boolean }} [opts]
 * @returns {{ config: KitConfig, problems: string[] }}
 */
function loadConfig(env, opts = {}) {
  /** @type {string[]} */
  const problems = [];
  const value = (/** @type {string} */ name) => {
    const v = env[name];
    return v === undefined || v.trim() === '' ? undefined : v.trim();
  };

  let serviceUrl = value('REPO_CONNECT_URL');
  if (serviceUrl !== undefined) {
    let parsed;
    try {
      parsed = new URL(serviceUrl);
    } catch {
      parsed = undefined;
    }
    if (!parsed || (parsed.protocol !== 'https:' && parsed.protocol !== 'http:')) {
      problems.push('REPO_CONNECT_URL must be an http(s) URL');
      serviceUrl = undefined;
    } else {
      serviceUrl = serviceUrl.replace(/\/+$/, '');
    }
  }

  let containerToken = value('REPO_CONNECT_CONTAINER_TOKEN');
  const tokenPath = value('REPO_CONNECT_CONTAINER_TOKEN_FILE');
  if (containerToken !== undefined && tokenPath !== undefined) {
    problems.push('set only one of REPO_CONNECT_CONTAINER_TOKEN and REPO_CONNECT_CONTAINER_TOKEN_FILE');
    containerToken = undefined;
  } else if (tokenPath !== undefined && !opts.lazyContainerToken) {
    try {
      containerToken = fs.readFileSync(tokenPath, 'utf8').trim() || undefined;
      if (containerToken === undefined) problems.push('REPO_CONNECT_CONTAINER_TOKEN_FILE is empty');
    } catch (err) {
      // Only the error code: a message could quote the path's content in odd cases, never worth it.
      problems.push(`REPO_CONNECT_CONTAINER_TOKEN_FILE cannot be read (${errorCode(err)})`);
    }
  }

  const minValiditySeconds = integer(value('REPO_CONNECT_MIN_VALIDITY_SECONDS'), 60, 0, 86_400);
  if (Number.isNaN(minValiditySeconds)) problems.push('REPO_CONNECT_MIN_VALIDITY_SECONDS must be a whole number of seconds (0..86400)');
  const receiverPort = integer(value('REPO_CONNECT_RECEIVER_PORT'), 8787, 0, 65_535);
  if (Number.isNaN(receiverPort)) problems.push('REPO_CONNECT_RECEIVER_PORT must be a port number (0..65535)');

  // `host[:port]` (https only) or `http://host[:port]`, which allows plain http for that host alone.
  const gitHosts = (value('REPO_CONNECT_GIT_HOST') ?? '')
    .split(',')
    .map((h) => h.trim().toLowerCase())
    .filter(Boolean)
    .map((h) => {
      const scheme = /^(https?):\/\//.exec(h);
      return { host: h.replace(/^https?:\/\//, '').replace(/\/+$/, ''), http: scheme?.[1] === 'http' };
    });

  const home = value('HOME') ?? os.homedir();
  return {
    config: {
      serviceUrl,
      rigId: value('REPO_CONNECT_RIG_ID')?.toLowerCase(), // the service answers ids in lower case
      containerToken,
      containerTokenFile: tokenPath === undefined ? undefined : path.resolve(tokenPath),
      tokenFile: path.resolve(value('REPO_CONNECT_TOKEN_FILE') ?? path.join(home, '.repo-connect', 'git-token.json')),
      gitHosts: gitHosts.map((h) => h.host),
      httpHosts: gitHosts.filter((h) => h.http).map((h) => h.host),
      minValiditySeconds,
      receiverPort,
      receiverHost: value('REPO_CONNECT_RECEIVER_HOST') ?? '0.0.0.0',
    },
    problems,
  };
}

/**
 * Names the variables a program needs but that are not set.
 * @param {KitConfig} config
 * @param {Array<keyof typeof VARIABLE>} keys
 * @returns {string[]}
 */
function missingSettings(config, keys) {
  return keys.filter((k) => config[k] === undefined).map((k) => VARIABLE[k]);
}

/**
 * @param {string | undefined} raw
 * @param {number} fallback
 * @param {number} min
 * @param {number} max
 */
function integer(raw, fallback, min, max) {
  if (raw === undefined) return fallback;
  if (!/^\d+$/.test(raw)) return Number.NaN;
  const n = Number(raw);
  return n >= min && n <= max ? n : Number.NaN;
}

/** @param {unknown} err */
function errorCode(err) {
  const code = err && typeof err === 'object' && 'code' in err ? err.code : undefined;
  return typeof code === 'string' ? code : 'error';
}

module.exports = { loadConfig, missingSettings, errorCode };
