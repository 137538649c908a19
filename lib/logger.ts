// Structured logs (pino) with redaction: authorization headers, cookies, tokens and keys are
// censored wherever they appear in a logged object, so a careless log line cannot leak one.
import pino, { type Logger, type LoggerOptions } from 'pino';

export type { Logger };

/** Keys whose values are secrets wherever they sit in a logged object. */
const SECRET_KEYS = [
  'authorization',
  'cookie',
  'set-cookie',
  'token',
  'access_token',
  'refresh_token',
  'container_token',
  'accessToken',
  'refreshToken',
  'containerToken',
  'privateKey',
  'private_key',
  'password',
  'secret',
  'client_secret',
  'clientSecret',
  'webhookSecret',
  'adminApiToken',
  'secretsKeys',
];

// pino's `*` matches exactly one level, so each key is listed at the depths logged objects reach
// (`req.headers.authorization`, `err.request.headers.authorization`, `config.github.apps.*.privateKey`).
const DEPTHS = ['', '*', '*.*', '*.*.*', '*.*.*.*'];

/** Paths pino censors. */
export const REDACT_PATHS = DEPTHS.flatMap((prefix) =>
  SECRET_KEYS.map((key) => {
    const segment = /^[A-Za-z_$][\w$]*$/.test(key) ? key : `["${key}"]`;
    if (prefix === '') return segment;
    return segment.startsWith('[') ? `${prefix}${segment}` : `${prefix}.${segment}`;
  }),
).concat(['body.tokens[*].token', '*.tokens[*].token']);

/** pino options shared by the API (Fastify's logger) and the worker. */
export function loggerOptions(level: string): LoggerOptions {
  return {
    level,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    base: { service: 'repo-connect' },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
}

/** A logger for code outside Fastify (worker, tooling). `destination` defaults to stdout. */
export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return destination ? pino(loggerOptions(level), destination) : pino(loggerOptions(level));
}
